//go:build slow

package main

// Twice the passes: checksum gets twice as slow, nothing else changes.
const passes = 20
