// Command batch is a CPU- and allocation-heavy batch job that profiles itself with
// runtime/pprof (the way `go test -cpuprofile` does) and writes batch.cpu.pb.gz and
// batch.heap.pb.gz into the directory given as its first argument.
package main

import (
	"bytes"
	"compress/gzip"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

type record struct {
	key   string
	value float64
}

//go:noinline
func parse(lines []string) []record {
	out := make([]record, 0, len(lines))
	for _, l := range lines {
		k, v, _ := strings.Cut(l, "=")
		f, _ := strconv.ParseFloat(v, 64)
		out = append(out, record{k, f})
	}
	return out
}

var wordRx = regexp.MustCompile(`[a-z]+[0-9]*`)

//go:noinline
func tokenize(s string) int { return len(wordRx.FindAllString(s, -1)) }

//go:noinline
func compress(b []byte) int {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Len()
}

//go:noinline
func aggregate(rs []record) map[string]float64 {
	m := map[string]float64{}
	for _, r := range rs {
		m[r.key] += r.value
	}
	return m
}

func run(deadline time.Time) {
	lines := make([]string, 20000)
	for i := range lines {
		lines[i] = "key" + strconv.Itoa(i%97) + "=" + strconv.Itoa(i)
	}
	text := strings.Repeat("alpha beta42 gamma delta7 ", 2000)
	var keep []map[string]float64
	for time.Now().Before(deadline) {
		keep = append(keep, aggregate(parse(lines)))
		if len(keep) > 50 {
			keep = keep[1:]
		}
		_ = tokenize(text)
		_ = compress([]byte(text))
	}
	runtime.KeepAlive(keep)
}

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: batch OUT_DIR")
	}
	dir := os.Args[1]
	cpu, err := os.Create(filepath.Join(dir, "batch.cpu.pb.gz"))
	if err != nil {
		log.Fatal(err)
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		log.Fatal(err)
	}
	run(time.Now().Add(3 * time.Second))
	pprof.StopCPUProfile()
	cpu.Close()
	runtime.GC()
	heap, err := os.Create(filepath.Join(dir, "batch.heap.pb.gz"))
	if err != nil {
		log.Fatal(err)
	}
	if err := pprof.WriteHeapProfile(heap); err != nil {
		log.Fatal(err)
	}
	heap.Close()
}
