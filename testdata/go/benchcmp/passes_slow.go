//go:build slow

package benchcmp

// 15% more passes: checksum gets 15% slower, nothing else changes.
const passes = 23
