// Command demo is a small Go service used to record gocost's golden corpus: it exercises
// every profile type net/http/pprof serves. It listens on 127.0.0.1 only, writes its
// address to the file named by its first argument and exits after -duration.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	_ "expvar"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"time"
)

var duration = flag.Duration("duration", 10*time.Minute, "exit after this long")

// ---- CPU: recursion, inlining, methods, closures, generics ----

//go:noinline
func fib(n int) int {
	if n < 2 {
		return n
	}
	return fib(n-1) + fib(n-2)
}

// mix is small enough to be inlined into its callers.
func mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	return x
}

//go:noinline
func hashLoop(n int) uint64 {
	var h uint64
	for i := 0; i < n; i++ {
		h += mix(uint64(i) + h)
	}
	return h
}

type matrix [][]float64

//go:noinline
func newMatrix(n int) matrix {
	m := make(matrix, n)
	for i := range m {
		m[i] = make([]float64, n)
		for j := range m[i] {
			m[i][j] = float64(i*n+j) / 7
		}
	}
	return m
}

//go:noinline
func (a matrix) mul(b matrix) matrix {
	n := len(a)
	c := newMatrix(n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for k := 0; k < n; k++ {
				s += a[i][k] * b[k][j]
			}
			c[i][j] = s
		}
	}
	return c
}

type number interface{ ~int | ~float64 }

//go:noinline
func sumAll[T number](xs []T) T {
	var s T
	for _, x := range xs {
		s += x
	}
	return s
}

//go:noinline
func sortWords(n int) []string {
	words := make([]string, n)
	for i := range words {
		words[i] = fmt.Sprintf("w%08d", (i*7919)%n)
	}
	sort.Strings(words)
	return words
}

//go:noinline
func digest(rounds int) [32]byte {
	var d [32]byte
	for i := 0; i < rounds; i++ {
		d = sha256.Sum256(d[:])
	}
	return d
}

//go:noinline
func encodeJSON(n int) int {
	type item struct {
		ID   int      `json:"id"`
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	total := 0
	for i := 0; i < n; i++ {
		b, _ := json.Marshal(item{ID: i, Name: strings.Repeat("x", i%17), Tags: []string{"a", "b"}})
		total += len(b)
	}
	return total
}

func cpuWorker(ctx context.Context) {
	ints := make([]int, 1000)
	floats := make([]float64, 1000)
	for i := range ints {
		ints[i], floats[i] = i, float64(i)
	}
	for ctx.Err() == nil {
		_ = fib(24)
		_ = hashLoop(1_000_000)
		_ = newMatrix(60).mul(newMatrix(60))
		_ = sumAll(ints) + int(sumAll(floats))
	}
}

func textWorker(ctx context.Context) {
	for ctx.Err() == nil {
		_ = sortWords(20_000)
		_ = digest(20_000)
		_ = encodeJSON(2_000)
	}
}

// ---- heap and allocs ----

var (
	sink     [][]byte
	retained [][]byte
	cache    = map[int][]byte{}
)

//go:noinline
func allocSmall() []byte { return make([]byte, 512) }

//go:noinline
func allocBig() []byte { return make([]byte, 1<<20) }

//go:noinline
func allocCacheEntry(i int) []byte { return make([]byte, 4096+i%4096) }

func allocWorker(ctx context.Context) {
	for i := 0; ctx.Err() == nil; i++ {
		sink = append(sink, allocSmall())
		if len(sink) > 1000 {
			sink = nil
		}
		if i%200 == 0 && len(retained) < 20 {
			retained = append(retained, allocBig())
		}
		if len(cache) < 2000 {
			cache[i] = allocCacheEntry(i)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// ---- mutex and block contention ----

type account struct {
	mu      sync.Mutex
	balance int
}

//go:noinline
func (a *account) deposit(n int) {
	a.mu.Lock()
	a.balance += n
	time.Sleep(time.Millisecond)
	a.mu.Unlock()
}

var rw sync.RWMutex

//go:noinline
func readShared() {
	rw.RLock()
	time.Sleep(200 * time.Microsecond)
	rw.RUnlock()
}

//go:noinline
func writeShared() {
	rw.Lock()
	time.Sleep(2 * time.Millisecond)
	rw.Unlock()
}

func contentionWorker(ctx context.Context, a *account) {
	for i := 0; ctx.Err() == nil; i++ {
		a.deposit(i)
		if i%5 == 0 {
			writeShared()
		} else {
			readShared()
		}
	}
}

//go:noinline
func producer(ctx context.Context, c chan<- int) {
	for i := 0; ctx.Err() == nil; i++ {
		c <- i
		time.Sleep(3 * time.Millisecond)
	}
}

//go:noinline
func consumer(c <-chan int) {
	for range c {
	}
}

// ---- goroutines: blocked, leaked, locked to threads ----

//go:noinline
func blockOnChan(c chan int) { <-c }

//go:noinline
func blockOnSelect(a, b chan int) {
	select {
	case <-a:
	case <-b:
	}
}

//go:noinline
func waitForGroup(wg *sync.WaitGroup) { wg.Wait() }

//go:noinline
func waitOnCond(c *sync.Cond) {
	c.L.Lock()
	c.Wait()
	c.L.Unlock()
}

// leaky starts goroutines that block forever on channels nobody else can reach: the
// goroutineleak profile reports them.
func leaky() {
	c := make(chan int)
	go blockOnChan(c)
	a, b := make(chan int), make(chan int)
	go blockOnSelect(a, b)
}

var (
	parked  = make(chan int) // reachable: these goroutines are blocked, not leaked
	wg      sync.WaitGroup
	condMu  sync.Mutex
	cond    = sync.NewCond(&condMu)
	stopped = make(chan struct{})
)

//go:noinline
func lockedThread() {
	runtime.LockOSThread()
	<-stopped
}

func main() {
	flag.Parse()
	if flag.NArg() != 1 {
		log.Fatal("usage: demo [-duration D] ADDR_FILE")
	}
	runtime.SetMutexProfileFraction(1)
	runtime.SetBlockProfileRate(1)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	go pprof.Do(ctx, pprof.Labels("worker", "cpu", "tenant", "acme"), func(ctx context.Context) { cpuWorker(ctx) })
	go pprof.Do(ctx, pprof.Labels("worker", "text", "tenant", "globex"), func(ctx context.Context) { textWorker(ctx) })
	go pprof.Do(ctx, pprof.Labels("worker", "alloc"), func(ctx context.Context) { allocWorker(ctx) })
	acct := &account{}
	for i := 0; i < 4; i++ {
		go pprof.Do(ctx, pprof.Labels("worker", "contention"), func(ctx context.Context) { contentionWorker(ctx, acct) })
	}
	c := make(chan int)
	go producer(ctx, c)
	go consumer(c)
	for i := 0; i < 3; i++ {
		leaky()
	}
	for i := 0; i < 2; i++ {
		go blockOnChan(parked)
	}
	wg.Add(1)
	go waitForGroup(&wg)
	go waitOnCond(cond)
	for i := 0; i < 3; i++ {
		go lockedThread()
	}

	// Write then rename, so a reader polling the file never sees a partial address.
	tmp := flag.Arg(0) + ".tmp"
	if err := os.WriteFile(tmp, []byte(ln.Addr().String()), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.Rename(tmp, flag.Arg(0)); err != nil {
		log.Fatal(err)
	}
	go func() {
		time.Sleep(*duration)
		os.Exit(0)
	}()
	log.Fatal(http.Serve(ln, nil))
}
