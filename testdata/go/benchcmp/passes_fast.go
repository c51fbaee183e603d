//go:build !slow

package benchcmp

const passes = 20
