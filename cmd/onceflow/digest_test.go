package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/internal/testenv"
)

func TestDigestFromTheCLI(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "digest"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "digest", "text.tmpl"), []byte("{{range .events}}{{.key}} {{end}}"), 0o644))
	env := cliEnvWith(t, mapEnv{"ONCEFLOW_TEMPLATES_DIR": dir})
	rcv := testenv.NewReceiver(t)
	ctx := context.Background()
	event := func(key string) string {
		path := filepath.Join(t.TempDir(), key+".json")
		require.NoError(t, os.WriteFile(path, []byte(`{"key":"`+key+`","subscriber":"user-42","template":"digest",
			"digest":{"key":"comments","window":"15s"},"deliveries":[{"channel":"webhook","to":"`+rcv.URL+`/d"}]}`), 0o600))
		return path
	}

	r := run(ctx, env, "send", "--file", event("cli-ev-1"))
	require.Equal(t, exitOK, r.code, r.stderr)
	r = run(ctx, env, "status", "cli-ev-1")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "waiting in digest comments of subscriber user-42")
	assert.Regexp(t, `webhook\s+\S+/d\s+pending`, r.stdout)

	r = run(ctx, env, "cancel", "cli-ev-1")
	assert.Equal(t, exitInput, r.code)
	assert.Contains(t, r.stderr, "cannot be withdrawn from its digest")

	require.Eventually(t, func() bool {
		r = run(ctx, env, "digest", "user-42", "comments")
		return r.code == exitOK
	}, 15*time.Second, 100*time.Millisecond, "the digest starts: %s", r.stderr)
	assert.Contains(t, r.stdout, "events (1): cli-ev-1")

	r = run(ctx, env, "send", "--file", event("cli-ev-2"), "--wait")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, `sent in digest comments of subscriber user-42 as notification digest:user-42:comments:\S+, with 2 events`, r.stdout)
	assert.Regexp(t, `/d\s+delivered`, r.stdout)

	r = run(ctx, env, "digest", "user@example.com", "comments")
	assert.Equal(t, exitInput, r.code)
	assert.Contains(t, r.stderr, "subscriber")
	r = run(ctx, env, "digest", "user-42", "likes")
	assert.Equal(t, exitInput, r.code)
	assert.Contains(t, r.stderr, `no digest "likes"`)
}
