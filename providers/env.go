package providers

import (
	"strconv"
	"strings"
)

// MaxPerChannel bounds the numbered providers of one channel read from the
// environment: ONCEFLOW_SMTP_ADDR, then ONCEFLOW_SMTP_2_ADDR and
// ONCEFLOW_SMTP_3_ADDR, tried in that order (Chain).
const MaxPerChannel = 3

// Numbered returns the environment of the nth provider of a channel whose
// variables all start with prefix: for n > 1, prefix+"X" is read as
// prefix+"<n>_X", so the same ConfigFromEnv reads every numbered provider.
func Numbered(getenv func(string) string, prefix string, n int) func(string) string {
	if n == 1 {
		return getenv
	}
	return func(name string) string {
		return getenv(prefix + strconv.Itoa(n) + "_" + strings.TrimPrefix(name, prefix))
	}
}

// NumberedConfigs reads up to MaxPerChannel providers of one channel with
// read, the first from prefix+"X", the others from prefix+"<n>_X", and
// returns those configured, in order.
func NumberedConfigs[C any](getenv func(string) string, prefix string, read func(func(string) string) (C, bool)) []C {
	var cfgs []C
	for n := 1; n <= MaxPerChannel; n++ {
		if c, ok := read(Numbered(getenv, prefix, n)); ok {
			cfgs = append(cfgs, c)
		}
	}
	return cfgs
}
