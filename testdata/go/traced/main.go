// Command traced is the test bed for continuous execution tracing: a small busy service
// whose execution traces have GC pauses with mark assists, scheduler latency (more runnable
// goroutines than procs) and blocking (a mutex convoy, channels). It serves net/http/pprof
// (so /debug/pprof/trace) and expvar on 127.0.0.1 and writes its address to the file named
// by its first argument. /work answers a small API call's worth of CPU and allocation (a few
// hundred records encoded as JSON, answered with their checksum): the load of `xtask
// bench-capture`, which measures what continuous tracing costs the service.
package main

import (
	"encoding/json"
	_ "expvar"
	"flag"
	"fmt"
	"hash/crc32"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
)

var (
	workers  = flag.Int("workers", 4, "goroutines allocating and contending all the time")
	duration = flag.Duration("duration", 5*time.Minute, "exit after this long")

	mu   sync.Mutex
	sink [][]byte
)

//go:noinline
func churn(n int) {
	for i := 0; i < n; i++ {
		b := make([]byte, 4096+i%8192)
		b[0] = byte(i)
		mu.Lock()
		sink = append(sink, b)
		if len(sink) > 2000 {
			sink = sink[:0]
		}
		mu.Unlock()
	}
}

//go:noinline
func pingPong(rounds int) {
	a, b := make(chan int), make(chan int)
	go func() {
		for v := range a {
			b <- v + 1
		}
		close(b)
	}()
	for i := 0; i < rounds; i++ {
		a <- i
		<-b
	}
	close(a)
}

type record struct {
	ID   int      `json:"id"`
	Name string   `json:"name"`
	Tags []string `json:"tags"`
}

// work is one API call: build records, encode them, answer their size and checksum.
func work(w http.ResponseWriter, _ *http.Request) {
	recs := make([]record, 200)
	for i := range recs {
		recs[i] = record{ID: i, Name: "item-" + strconv.Itoa(i*7919), Tags: []string{"a", "b"}}
	}
	b, err := json.Marshal(recs)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(w, "%d %08x\n", len(b), crc32.ChecksumIEEE(b))
}

func main() {
	flag.Parse()
	http.HandleFunc("/work", work)
	// A smallish heap goal: the churn starts several GC cycles a second, with mark assists.
	debug.SetGCPercent(50)
	for i := 0; i < *workers; i++ {
		go func() {
			for {
				churn(50)
				pingPong(20)
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
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
