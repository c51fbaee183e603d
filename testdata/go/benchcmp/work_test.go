package benchcmp

import (
	"math/rand"
	"strconv"
	"strings"
	"testing"
)

var (
	data    = make([]byte, 4096)
	records string
	ints    []int
	sink    int
)

func init() {
	r := rand.New(rand.NewSource(1))
	r.Read(data)
	var sb strings.Builder
	for i := 0; i < 500; i++ {
		sb.WriteString("k" + strconv.Itoa(i) + "=" + strconv.Itoa(r.Intn(1000)) + ";")
	}
	records = sb.String()
	ints = r.Perm(2000)
}

func BenchmarkChecksum(b *testing.B) {
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		sink += int(checksum(data))
	}
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		sink += parseRecords(records)
	}
}

func BenchmarkSort(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		sink += sortCopy(ints)[0]
	}
}

// BenchmarkMix runs all three, so a CPU profile of it shows how the time splits.
func BenchmarkMix(b *testing.B) {
	for i := 0; i < b.N; i++ {
		sink += int(checksum(data)) + parseRecords(records) + sortCopy(ints)[0]
	}
}

// BenchmarkMixParallel is BenchmarkMix on every CPU: a CPU profile of a fixed number of
// iterations (-test.benchtime=Nx) collects samples twice as fast on two cores.
func BenchmarkMixParallel(b *testing.B) {
	b.RunParallel(func(pb *testing.PB) {
		s := 0
		for pb.Next() {
			s += int(checksum(data)) + parseRecords(records) + sortCopy(ints)[0]
		}
		if s == 42 {
			println(s)
		}
	})
}
