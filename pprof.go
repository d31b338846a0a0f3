//go:build pprof

package main

import (
	"log"
	"net/http"
	_ "net/http/pprof" // the profiles, on their own loopback listener
	"os"
)

// A build with -tags pprof serves net/http/pprof on 127.0.0.1:6060 (or
// PPROF_ADDR), for taking the heap and CPU profiles bench/analysis.md
// quotes. The shipped binary has none of it.
func init() {
	addr := os.Getenv("PPROF_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6060"
	}
	go func() { log.Println(http.ListenAndServe(addr, nil)) }()
}
