// Package jsontext checks JSON text: Valid answers as encoding/json's Valid
// does, several times faster on large values. The service checks every
// value it stores and every value it reads back from Redis (another
// program may have written anything there), so on 10 KB and 100 KB values
// json.Valid's state machine was about half of a read's CPU.
package jsontext
