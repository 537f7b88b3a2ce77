//go:build linux

package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Broadcast flags a run could not use are refused with exit code 2 and an
// error that names the flag, before anything is started.
func TestBadBroadcastFlagsAreRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--broadcasts", "-1"}, "--broadcasts -1 is negative"},
		{[]string{"--broadcasts", "2", "--broadcast-recipients", "0"}, "--broadcast-recipients 0 is not between 1 and 100000"},
		{[]string{"--broadcasts", "2", "--broadcast-chunk", "20000"}, "--broadcast-chunk 20000 is not between 1 and 10000"},
	} {
		var stdout, stderr bytes.Buffer
		// No onceflow binary at that path: a run that got past the flags
		// would say so instead.
		code := run(context.Background(), append(tc.args, "--onceflow", "/nonexistent/onceflow"), &stdout, &stderr)
		assert.Equal(t, 2, code, "%v: %s", tc.args, stderr.String())
		assert.Contains(t, stderr.String(), tc.want)
		assert.NotContains(t, stderr.String(), "/nonexistent/onceflow")
	}
	// Without broadcasts, their other flags are not looked at.
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 2, run(context.Background(), []string{"--broadcast-recipients", "0", "--onceflow", "/nonexistent/onceflow"}, &stdout, &stderr))
	assert.Contains(t, stderr.String(), `--onceflow "/nonexistent/onceflow"`)
}
