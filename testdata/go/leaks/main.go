// Command leaks is the test bed for gocost's goroutine-leak detection: a service with
// goroutine leaks at known sites (different rates and blocking kinds) and decoys that look
// like leaks for a while but are not. It serves net/http/pprof on 127.0.0.1 and writes its
// address to the file named by the first argument.
//
// Leaks (ground truth; rates are per second, scaled by -rate):
//
//	main.watchLoop       1.0/s  blocked on chan receive, nobody ever sends
//	main.publish         0.5/s  blocked on chan send, nobody ever receives
//	main.waitForAll      0.5/s  blocked in sync.WaitGroup.Wait, Done is never called
//	main.lockForever     0.25/s blocked on sync.Mutex.Lock, the mutex is never unlocked
//
// Decoys (must not be reported):
//
//	main.poolWorker      a worker pool that grows to 40 and stays there
//	main.handleRequest   per-request goroutines, bursty, each gone within ~1 s
//	main.cacheFill       a cache that warms up: goroutines start fast, then stop being created
//	main.napper          long but finite sleeps (-nap, default 20 s): grows, then plateaus
//	main.tickerLoop      a few long-lived background loops, constant count
package main

import (
	"flag"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"sync"
	"time"
)

var (
	rate     = flag.Float64("rate", 1, "multiplies every leak and decoy rate")
	nap      = flag.Duration("nap", 20*time.Second, "how long main.napper goroutines sleep")
	duration = flag.Duration("duration", 10*time.Minute, "exit after this long")
)

func watchLoop(ch chan int) {
	for v := range ch {
		_ = v
	}
}

func publish(ch chan int) { ch <- 1 }

func waitForAll(wg *sync.WaitGroup) { wg.Wait() }

func lockForever(mu *sync.Mutex) {
	mu.Lock()
	mu.Unlock()
}

func poolWorker(jobs chan int) {
	for j := range jobs {
		_ = j * 2
	}
}

func handleRequest(done chan struct{}) {
	select {
	case <-done:
	case <-time.After(time.Duration(200+rand.Intn(800)) * time.Millisecond):
	}
}

func cacheFill(key int, cache *sync.Map) {
	time.Sleep(time.Duration(100+rand.Intn(400)) * time.Millisecond)
	cache.Store(key, key*key)
}

func napper() { time.Sleep(*nap) }

func tickerLoop(stop chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// every calls f about perSecond times a second until the process exits.
func every(perSecond float64, f func()) {
	if perSecond <= 0 {
		return
	}
	d := time.Duration(float64(time.Second) / perSecond)
	go func() {
		for {
			time.Sleep(d)
			f()
		}
	}()
}

func main() {
	flag.Parse()
	r := *rate
	var held sync.Mutex
	held.Lock() // never unlocked

	every(1.0*r, func() { go watchLoop(make(chan int)) })
	every(0.5*r, func() { go publish(make(chan int)) })
	every(0.5*r, func() {
		var wg sync.WaitGroup
		wg.Add(1)
		go waitForAll(&wg)
	})
	every(0.25*r, func() { go lockForever(&held) })

	jobs := make(chan int)
	workers := 0
	every(2*r, func() {
		if workers < 40 {
			workers++
			go poolWorker(jobs)
		}
		select {
		case jobs <- 1:
		default:
		}
	})
	done := make(chan struct{})
	every(8*r, func() {
		for i := 0; i < rand.Intn(4); i++ {
			go handleRequest(done)
		}
	})
	var cache sync.Map
	start := time.Now()
	key := 0
	every(6*r, func() {
		// Warm-up: new keys for the first 20 s, then everything is cached.
		if time.Since(start) < 20*time.Second {
			key++
			go cacheFill(key, &cache)
		}
	})
	every(1*r, func() { go napper() })
	stop := make(chan struct{})
	for i := 0; i < 3; i++ {
		go tickerLoop(stop)
	}

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
	fmt.Println("serving on", ln.Addr())
	_ = http.Serve(ln, nil)
}
