// Command regress is the test bed for gocost's regression finder: a service that does a
// steady amount of work per second in three named functions and serves net/http/pprof.
// Building with `-tags slow` makes exactly one function, main.checksum, do 30% more work
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
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

var (
	version = "dev"

	addr     = flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	rate     = flag.Int("rate", 2000, "rounds of work per second (0: as many as the CPU allows)")
	workers  = flag.Int("workers", 1, "goroutines sharing the work")
	duration = flag.Duration("duration", 10*time.Minute, "exit after this long")

	data    = make([]byte, 16384)
	records string
	ints    []int
	sink    atomic.Int64
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

// parseRecords sums the numbers in "key=value;" records.
//
//go:noinline
func parseRecords(s string) int {
	total := 0
	for _, rec := range strings.Split(s, ";") {
		_, v, ok := strings.Cut(rec, "=")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err == nil {
			total += n
		}
	}
	return total
}

// sortCopy sorts a copy of xs.
//
//go:noinline
func sortCopy(xs []int) []int {
	out := append([]int(nil), xs...)
	sort.Ints(out)
	return out
}

// round is one unit of the service's work.
//
//go:noinline
func round() {
	sink.Add(int64(checksum(data)) + int64(parseRecords(records)) + int64(sortCopy(ints)[0]))
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
	var sb strings.Builder
	for i := 0; i < 1000; i++ {
		sb.WriteString("k" + strconv.Itoa(i) + "=" + strconv.Itoa(r.Intn(1000)) + ";")
	}
	records = sb.String()
	ints = r.Perm(4000)
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
