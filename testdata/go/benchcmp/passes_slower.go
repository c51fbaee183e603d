//go:build slower && !slow

package benchcmp

// 40% more passes, for tests that judge CPU profiles: a profile's samples (100 per second)
// carry more noise than a benchmark's timings, so the change they must find is larger.
const passes = 28
