//go:build !slow

package main

const passes = 10
