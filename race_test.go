//go:build race

package main

// raceEnabled: the tests run under the race detector, which makes
// everything several times slower; latency bounds do not hold then.
const raceEnabled = true
