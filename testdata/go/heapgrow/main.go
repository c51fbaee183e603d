// Command heapgrow is the test bed for gocost's heap-growth analysis: a service whose heap
// in use grows at two known allocation sites, beside memory that looks busy but does not
// grow. It serves net/http/pprof on 127.0.0.1 and writes its address to the file named by
// the first argument.
//
// Growing (ground truth; rates scaled by -rate):
//
//	main.remember      keeps 64 KiB every 100 ms in a global slice   (~640 KiB/s)
//	main.cacheForever  adds a 64 KiB entry 20 times a second to a map that is never pruned (~1.25 MiB/s)
//
// Not growing (decoys):
//
//	main.warmCache     fills 24 MiB in its first 5 s, then only reads
//	main.ring          a ring of 256 × 32 KiB buffers, overwritten in turn (8 MiB, steady:
//	                   filled before the address is written, so that a slow start on a busy
//	                   machine never looks like growth)
//	main.scratch       1 MiB buffers used once and dropped (garbage)
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
	"sync"
	"time"
)

var (
	rate     = flag.Float64("rate", 1, "multiplies the growth rates")
	duration = flag.Duration("duration", 10*time.Minute, "exit after this long")

	kept  [][]byte
	mu    sync.Mutex
	cache = map[int][]byte{}
	warm  = map[int][]byte{}
	rings [256][]byte
	sink  byte
)

func remember() {
	mu.Lock()
	kept = append(kept, make([]byte, 64<<10))
	mu.Unlock()
}

func cacheForever(k int) {
	mu.Lock()
	cache[k] = make([]byte, 64<<10)
	mu.Unlock()
}

func warmCache(k int) {
	mu.Lock()
	warm[k%768] = make([]byte, 32<<10)
	mu.Unlock()
}

func ring(i int) {
	rings[i%len(rings)] = make([]byte, 32<<10)
}

func scratch() {
	b := make([]byte, 1<<20)
	b[len(b)-1] = 1
	sink += b[len(b)-1]
}

// every calls f(i) about perSecond times a second, i = 0, 1, 2, ...
func every(perSecond float64, f func(int)) {
	d := time.Duration(float64(time.Second) / perSecond)
	go func() {
		for i := 0; ; i++ {
			time.Sleep(d)
			f(i)
		}
	}()
}

func main() {
	flag.Parse()
	r := *rate
	every(10*r, func(int) { remember() })
	every(20*r, cacheForever)
	start := time.Now()
	every(200, func(i int) {
		if time.Since(start) < 5*time.Second {
			warmCache(i)
		}
	})
	for i := range rings {
		ring(i)
	}
	every(50, func(i int) { ring(i + len(rings)) })
	every(30, func(int) { scratch() })

	// The heap profile shows what the last completed GC saw: make it see the full ring.
	runtime.GC()
	runtime.GC()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if len(flag.Args()) > 0 {
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
