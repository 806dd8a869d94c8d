// SPDX-License-Identifier: MIT
// queryall.go — the queryAll leak (a send with no receiver left), in Go,
// for tests/test_diag.c: it compares leash's debug=2 and debug=1 dumps of
// the same scenario written in C with Go's own, structurally (line shapes,
// wait reasons, counts), not byte for byte.
//
// Output: "=== debug=2", Go's pprof goroutine profile at debug=2
// (runtime.Stack(all) text), then "=== debug=1", the same at debug=1.
package main

import (
	"context"
	"os"
	"runtime/pprof"
	"time"
)

var delay = []time.Duration{0, 20 * time.Millisecond, 40 * time.Millisecond}

func ask(ch chan int, i int) {
	time.Sleep(delay[i])
	ch <- i // the two losers block here for good
}

func queryAll() int {
	ch := make(chan int)
	for i := 0; i < 3; i++ {
		go ask(ch, i)
	}
	return <-ch
}

func main() {
	// Labels, as leash_label_set would set them: inherited by the
	// goroutines queryAll starts.
	ctx := pprof.WithLabels(context.Background(), pprof.Labels("test", "queryall", "b", "2"))
	pprof.SetGoroutineLabels(ctx)
	for i := 0; i < 4; i++ {
		queryAll()
	}
	time.Sleep(100 * time.Millisecond) // every loser is blocked by now
	os.Stdout.WriteString("=== debug=2\n")
	pprof.Lookup("goroutine").WriteTo(os.Stdout, 2)
	os.Stdout.WriteString("=== debug=1\n")
	pprof.Lookup("goroutine").WriteTo(os.Stdout, 1)
}
