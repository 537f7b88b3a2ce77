//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "onceflow-chaos runs on Linux only (it relies on Pdeathsig and /proc)")
	os.Exit(1)
}
