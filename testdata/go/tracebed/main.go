// Command tracebed runs a short, busy workload under the execution tracer and writes the
// trace to the file named by its first argument. It exercises what gocost's trace parser must
// understand: goroutine creation and exit, channel ping-pong, a mutex convoy, blocking
// syscalls (pipe reads, file writes), network waits (a loopback TCP echo), sleeps, GC
// cycles with mark assists and sweeps, user tasks, regions and logs, and CPU samples (the
// CPU profiler runs during the trace).
//
// Usage: tracebed [-busy] OUT.trace
//
// -busy runs longer with more goroutines, for benchmarks (a trace of a few MB). -for D
// runs the busy rounds again and again for D (e.g. 5s, 60s), beside -pairs pairs of
// goroutines that play channel ping-pong, yield and nap (-nap) all the time, as a busy
// service would (a few MB of trace a second).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"sync"
	"time"
)

var sink [][]byte

func main() {
	busy := flag.Bool("busy", false, "run longer with more goroutines (benchmark traces)")
	dur := flag.Duration("for", 0, "run busy rounds for this long (a big benchmark trace)")
	pairs := flag.Int("pairs", 4, "with -for: ping-pong pairs in the background")
	nap := flag.Duration("nap", 50*time.Microsecond, "with -for: each ping-pong turn sleeps this long")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: tracebed [-busy | -for DURATION] OUT.trace")
		os.Exit(2)
	}
	out, err := os.Create(flag.Arg(0))
	if err != nil {
		fail(err)
	}
	// CPU samples appear in the trace while the CPU profiler runs.
	if err := pprof.StartCPUProfile(io.Discard); err != nil {
		fail(err)
	}
	// A small heap goal: the allocations below start GC cycles (with mark assists and
	// sweeps) on their own.
	debug.SetGCPercent(20)
	if err := trace.Start(out); err != nil {
		fail(err)
	}
	rounds, workers := 2, 3
	if *busy {
		rounds, workers = 40, 16
	}
	if *dur > 0 {
		background(*dur, *pairs, *nap)
		end := time.Now().Add(*dur)
		for r := 0; time.Now().Before(end); r++ {
			round(r, 16)
		}
		rounds = 0
	}
	for r := 0; r < rounds; r++ {
		round(r, workers)
		if r == 0 {
			// The tracer starts a new generation about every second: wait for one.
			time.Sleep(1100 * time.Millisecond)
		}
	}
	trace.Stop()
	pprof.StopCPUProfile()
	if err := out.Close(); err != nil {
		fail(err)
	}
}

func round(r, workers int) {
	ctx, task := trace.NewTask(context.Background(), "round")
	defer task.End()
	trace.Logf(ctx, "round", "number %d", r)

	var wg sync.WaitGroup
	// Channel ping-pong between two goroutines.
	wg.Add(2)
	ping, pong := make(chan int), make(chan int)
	go func() {
		defer wg.Done()
		for i := 0; i < 50; i++ {
			ping <- i
			<-pong
		}
		close(ping)
	}()
	go func() {
		defer wg.Done()
		for v := range ping {
			pong <- v
		}
	}()

	// A mutex convoy with allocation (GC, mark assists, sweeps) and CPU work.
	var mu sync.Mutex
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			sub, t := trace.NewTask(ctx, "worker")
			defer t.End()
			trace.WithRegion(sub, "alloc", func() {
				for i := 0; i < 100; i++ {
					mu.Lock()
					sink = append(sink, make([]byte, 4<<10))
					if len(sink) > 16 {
						sink = sink[:0]
					}
					mu.Unlock()
				}
			})
			trace.WithRegion(sub, "spin", func() { spin(10 * time.Millisecond) })
			trace.Log(sub, "done", fmt.Sprint(w))
		}(w)
	}

	// Blocking syscalls: a pipe read that waits for a writer, and file writes.
	wg.Add(1)
	go func() {
		defer wg.Done()
		pr, pw, err := os.Pipe()
		if err != nil {
			fail(err)
		}
		go func() {
			time.Sleep(2 * time.Millisecond)
			pw.Write([]byte("hello"))
			pw.Close()
		}()
		io.ReadAll(pr)
		pr.Close()
		f, err := os.CreateTemp("", "tracebed")
		if err != nil {
			fail(err)
		}
		for i := 0; i < 5; i++ {
			f.Write(make([]byte, 4096))
			f.Sync()
		}
		f.Close()
		os.Remove(f.Name())
	}()

	// The network: a loopback TCP echo, the reader waiting for the writer.
	wg.Add(1)
	go func() {
		defer wg.Done()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fail(err)
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.Copy(c, c)
			c.Close()
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			fail(err)
		}
		buf := make([]byte, 5)
		for i := 0; i < 5; i++ {
			time.Sleep(time.Millisecond)
			c.Write([]byte("hello"))
			io.ReadFull(c, buf)
		}
		c.Close()
	}()

	// Timers and a select.
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTimer(time.Millisecond)
		select {
		case <-t.C:
		case <-time.After(time.Second):
		}
		runtime.Gosched()
	}()
	wg.Wait()
}

// background starts n pairs of goroutines that ping-pong on channels (with a little work
// and a yield and a nap each turn) for d: scheduler latency and sync waits, all the time.
func background(d time.Duration, n int, nap time.Duration) {
	end := time.Now().Add(d)
	for i := 0; i < n; i++ {
		ping, pong := make(chan int), make(chan int)
		go func() {
			for v := 0; time.Now().Before(end); v++ {
				ping <- v
				<-pong
				runtime.Gosched()
				if nap > 0 {
					time.Sleep(nap)
				}
			}
			close(ping)
		}()
		go func() {
			for v := range ping {
				x := 0
				for j := 0; j < 200*v%1000; j++ {
					x += j
				}
				pong <- x
			}
		}()
	}
}

func spin(d time.Duration) {
	end := time.Now().Add(d)
	x := 0
	for time.Now().Before(end) {
		for i := 0; i < 1000; i++ {
			x += i * i
		}
	}
	if x == 42 {
		fmt.Println()
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "tracebed:", err)
	os.Exit(1)
}
