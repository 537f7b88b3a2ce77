//go:build linux

package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Flags that do not fit the topology are refused (exit 2, naming the
// flag) before anything starts.
func TestScaledFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--scaled", "--redis-kills", "1"}, "--redis-kills acts on the single redis-server"},
		{[]string{"--scaled", "--redis-restarts", "2"}, "--redis-restarts acts on the single redis-server"},
		{[]string{"--wait-replicas", "0"}, "--wait-replicas needs --scaled"},
		{[]string{"--redis-primary-kills", "2"}, "--redis-primary-kills needs --scaled"},
		{[]string{"--scaled", "--wait-replicas", "2"}, "--wait-replicas 0 or 1"},
		{[]string{"--scaled", "--apis", "0"}, "--apis must be positive"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"--onceflow", "/nonexistent/onceflow"}, tc.args...), &stdout, &stderr)
		assert.Equal(t, 2, code, "%v: %s", tc.args, stderr.String())
		assert.Contains(t, stderr.String(), tc.want, "%v", tc.args)
	}
}
