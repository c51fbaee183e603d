// Package benchcmp is the test bed for `gocost compare`: three pieces of ordinary Go work
// with benchmarks. Building with `-tags slow` makes exactly one function, checksum, do 15%
// more work (`-tags slower`: 40%; see passes_*.go); everything else is the same code.
package benchcmp

import (
	"sort"
	"strconv"
	"strings"
)

// checksum hashes data `passes` times (FNV-1a, re-seeded per pass).
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
func sortCopy(xs []int) []int {
	out := append([]int(nil), xs...)
	sort.Ints(out)
	return out
}
