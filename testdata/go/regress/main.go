// Command regress is the test bed for gocost's regression finder: a service that does a
// steady amount of work per second in three named functions (compute-bound loops over
// data that fits in the L1 cache, so that a busy neighbour slows them alike) and serves
// net/http/pprof.
// Building with `-tags slow` makes exactly one function, main.checksum, do twice the work
// (passes_*.go); `-ldflags=-X main.version=...` makes builds of identical code with
// different build IDs. It listens on -addr (127.0.0.1 only), writes its address to the
// file named by its first argument and exits after -duration.
package main

import (
	"flag"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"sync/atomic"
	"time"
)

var (
	version = "dev"

	addr     = flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	rate     = flag.Int("rate", 2000, "rounds of work per second (0: as many as the CPU allows)")
	workers  = flag.Int("workers", 1, "goroutines sharing the work")
	duration = flag.Duration("duration", 10*time.Minute, "exit after this long")

	data = make([]byte, 16384)
	sink atomic.Int64
)

// checksum hashes data `passes` times (FNV-1a, re-seeded per pass).
//
//go:noinline
func checksum(data []byte) uint32 {
	h := uint32(2166136261)
	for p := 0; p < passes; p++ {
		for _, b := range data {
			h ^= uint32(b)
			h *= 16777619
		}
		h ^= uint32(p)
	}
	return h
}

// scramble mixes data's 8-byte words with xorshift-multiply steps.
//
//go:noinline
func scramble(data []byte) uint64 {
	var h uint64 = 88172645463325252
	for r := 0; r < 20; r++ {
		for i := 0; i+8 <= len(data); i += 8 {
			w := uint64(data[i]) | uint64(data[i+1])<<8 | uint64(data[i+2])<<16 | uint64(data[i+3])<<24 |
				uint64(data[i+4])<<32 | uint64(data[i+5])<<40 | uint64(data[i+6])<<48 | uint64(data[i+7])<<56
			h ^= w
			h ^= h << 13
			h ^= h >> 7
			h ^= h << 17
			h *= 0x2545F4914F6CDD1D
		}
	}
	return h
}

// tally is Adler-32 over data, a few times.
//
//go:noinline
func tally(data []byte) uint32 {
	a, b := uint32(1), uint32(0)
	for r := 0; r < 3; r++ {
		for _, x := range data {
			a = (a + uint32(x)) % 65521
			b = (b + a) % 65521
		}
	}
	return b<<16 | a
}

// round is one unit of the service's work.
//
//go:noinline
func round() {
	sink.Add(int64(checksum(data)) + int64(scramble(data)) + int64(tally(data)))
}

// serve does its share of -rate rounds per second, in batches every 10 ms; a batch that
// falls behind (a busy machine) is dropped rather than made up, as a service sheds load.
// With -rate=0 it works without pause.
func serve(rate int) {
	if rate <= 0 {
		for {
			round()
		}
	}
	per := rate / 100
	if per < 1 {
		per = 1
	}
	t := time.NewTicker(10 * time.Millisecond)
	for range t.C {
		for i := 0; i < per; i++ {
			round()
		}
	}
}

func main() {
	flag.Parse()
	r := rand.New(rand.NewSource(1))
	r.Read(data)
	for i := 0; i < *workers; i++ {
		go serve(*rate / *workers)
	}
	http.HandleFunc("/version", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, version)
	})
	ln, err := net.Listen("tcp", *addr)
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
