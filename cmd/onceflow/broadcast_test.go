package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/testenv"
)

// broadcastFile writes a broadcast of n webhook recipients at url to a
// file and returns its path.
func broadcastFile(t *testing.T, key, url string, n int, body string) (string, onceflow.Broadcast) {
	b := onceflow.Broadcast{Key: key, Channel: onceflow.Webhook, Body: body}
	for i := range n {
		b.Recipients = append(b.Recipients, onceflow.Recipient{ID: fmt.Sprintf("member-%d", i), To: fmt.Sprintf("%s/hooks/%d", url, i)})
	}
	data, err := json.Marshal(b)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "b.json")
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path, b
}

func TestBroadcastWaitShowsProgressAndStatusShowsCounts(t *testing.T) {
	env := cliEnv(t)
	// One member's endpoint is gone for good.
	rcv := testenv.NewReceiver(t, testenv.Answer(func(id string, _ int) int {
		if id == onceflow.RecipientDeliveryID("newsletter-1", "member-5") {
			return http.StatusGone
		}
		return 0
	}))
	ctx := context.Background()
	path, b := broadcastFile(t, "newsletter-1", rcv.URL, 40, "This month's news")

	r := run(ctx, env, "broadcast", "--file", path, "--wait")
	assert.Equal(t, exitFailure, r.code, "one recipient failed: %s", r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	assert.Equal(t, "broadcast/newsletter-1", lines[0])
	assert.Contains(t, r.stdout, "40 of 40 settled: 39 delivered, 0 suppressed, 1 failed, 0 ambiguous", "a plain progress line, not a bar")
	assert.NotContains(t, r.stdout, "\r")
	assert.Regexp(t, `failed\s+40\s+39\s+0\s+1\s+0\s+0\s+0`, r.stdout)
	assert.Regexp(t, `member-5\s+failed\s+.*410`, r.stdout)
	for _, rc := range b.Recipients {
		require.Equal(t, 1, rcv.Raw(onceflow.RecipientDeliveryID(b.Key, rc.ID)), rc.ID)
	}

	r = run(ctx, env, "status", "--broadcast", "newsletter-1")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "broadcast/newsletter-1 completed")
	assert.Regexp(t, `member-5\s+failed`, r.stdout)

	// The same file again joins it; nothing is re-sent.
	r = run(ctx, env, "broadcast", "--file", path)
	require.Equal(t, exitOK, r.code, r.stderr)
	for _, rc := range b.Recipients {
		require.Equal(t, 1, rcv.Raw(onceflow.RecipientDeliveryID(b.Key, rc.ID)), rc.ID)
	}
	// Another payload under the key is refused.
	changed, _ := broadcastFile(t, "newsletter-1", rcv.URL, 40, "Other news")
	r = run(ctx, env, "broadcast", "--file", changed)
	assert.Equal(t, exitInput, r.code)
	assert.Contains(t, r.stderr, "different payload")

	r = run(ctx, env, "status", "--broadcast", "newsletter-404")
	assert.Equal(t, exitInput, r.code)
	assert.Contains(t, r.stderr, `no broadcast with key "newsletter-404"`)
}

func TestBroadcastRefusesAnInvalidFile(t *testing.T) {
	// Nothing to connect to: the file is refused before anything is.
	env := mapEnv{}
	path, b := broadcastFile(t, "newsletter-2", "https://partner.example", 5, "News")
	b.Recipients[3].To = "mailto:x"
	data, err := json.Marshal(b)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data, 0o600))
	r := run(context.Background(), env, "broadcast", "--file", path)
	assert.Equal(t, exitInput, r.code)
	assert.Contains(t, r.stderr, "recipients[3].to")
}
