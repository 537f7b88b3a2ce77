package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A bad ONCEFLOW_DEDUP_WINDOW is an input error in every process that
// reads it, named with its value, before anything is dialled: the API and
// broadcast used to keep recipient lists for the default window instead.
func TestBadDedupWindowIsRefusedByEveryProcess(t *testing.T) {
	file := filepath.Join(t.TempDir(), "broadcast.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"key":"b-1","channel":"webhook","recipients":[{"id":"r1","to":"https://example.com/h"}],"body":"hi"}`), 0o600))
	env := mapEnv{"ONCEFLOW_DEDUP_WINDOW": "bogus", "REDIS_URL": "redis://127.0.0.1:1/0", "TEMPORAL_ADDRESS": "127.0.0.1:1"}
	for _, args := range [][]string{
		{"api"},
		{"worker"},
		{"send", "--key", "k", "--body", "b", "--channel", "webhook", "--to", "https://example.com/h"},
		{"broadcast", "--file", file},
	} {
		r := run(context.Background(), env, args...)
		assert.Equal(t, exitInput, r.code, "%v: %s", args, r.stderr)
		assert.Contains(t, r.stderr, `ONCEFLOW_DEDUP_WINDOW="bogus" is not a positive duration`, args)
	}
}

// A bad limit of the public routes is an input error, naming its variable,
// in every process that reads the API's configuration, the dev stack
// included, before anything is started.
func TestBadPublicLimitIsRefusedByEveryProcess(t *testing.T) {
	env := mapEnv{"ONCEFLOW_UNSUBSCRIBE_LIMIT_PER_SUBSCRIBER": "5 per minute", "REDIS_URL": "redis://127.0.0.1:1/0", "TEMPORAL_ADDRESS": "127.0.0.1:1"}
	for _, args := range [][]string{
		{"api"},
		{"dev", "--data-dir", t.TempDir()},
		{"send", "--key", "k", "--body", "b", "--channel", "webhook", "--to", "https://example.com/h"},
		{"subscriber-token", "--subscriber", "u1"},
	} {
		// A process that took the value would run (dev starts its stack):
		// the deadline ends it, and the test fails instead of hanging.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		r := run(ctx, env, args...)
		cancel()
		assert.Equal(t, exitInput, r.code, "%v: %s", args, r.stderr)
		assert.Contains(t, r.stderr, `ONCEFLOW_UNSUBSCRIBE_LIMIT_PER_SUBSCRIBER: "5 per minute" is not`, args)
	}
}
