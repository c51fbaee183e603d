//go:build !slow && !slower

package benchcmp

const passes = 20
