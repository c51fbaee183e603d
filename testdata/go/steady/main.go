// Command steady is the test bed for what gocost shows a service holds: it parks a known
// number of goroutines and keeps a known number of bytes in use, and says so at /held, so
// that a test can compare every number gocost shows for goroutines and heap in use with
// the truth. It serves net/http/pprof on 127.0.0.1 and writes its address to the file
// named by its first argument.
package main

import (
	"encoding/json"
	_ "expvar"
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
	"time"
)

var (
	goroutines = flag.Int("goroutines", 2000, "goroutines parked for the whole run (in main.park)")
	heapMiB    = flag.Int("heap", 32, "MiB kept in use (by main.hold, in 4 MiB chunks: each one sampled by the heap profile)")
	duration   = flag.Duration("duration", 5*time.Minute, "exit after this long")

	held  [][]byte
	never = make(chan struct{})
)

//go:noinline
func park() { <-never }

//go:noinline
func hold(n int) {
	for i := 0; i < n; i++ {
		b := make([]byte, 4<<20)
		b[0] = 1
		held = append(held, b)
	}
}

func main() {
	flag.Parse()
	for i := 0; i < *goroutines; i++ {
		go park()
	}
	hold(*heapMiB / 4)
	// The heap profile shows what the last completed GC saw.
	runtime.GC()
	runtime.GC()
	http.HandleFunc("/held", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]int{
			"goroutines": runtime.NumGoroutine(),
			"parked":     *goroutines,
			"heap_bytes": len(held) * (4 << 20),
		})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if flag.NArg() > 0 {
		if err := os.WriteFile(flag.Arg(0), []byte(ln.Addr().String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	go func() {
		time.Sleep(*duration)
		os.Exit(0)
	}()
	_ = http.Serve(ln, nil)
}
