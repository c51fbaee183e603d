//go:build slow

package main

// 30% more passes: checksum gets 30% slower, nothing else changes.
const passes = 13
