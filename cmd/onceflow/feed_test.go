package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/feed"
	"github.com/onceflow/onceflow/internal/testenv"
)

func TestFeedCommandsAndTheAPIsFeedRoutes(t *testing.T) {
	env := cliEnv(t)
	ctx := context.Background()

	r := run(ctx, env, "send", "--key", "welcome-ada", "--channel", "inapp", "--to", "ada", "--subject", "Welcome", "--body", "Hello Ada", "--wait")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "delivered")

	r = run(ctx, env, "feed", "--subscriber", "ada")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "1 unread")
	assert.Regexp(t, `unread\s+dlv_\w+\s+welcome-ada\s+Welcome\s+Hello Ada`, r.stdout)

	r = run(ctx, env, "feed", "--subscriber", "ada", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var page feed.Page
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &page))
	require.Len(t, page.Items, 1)
	r = run(ctx, env, "feed", "--subscriber", "ada", "--read", page.Items[0].ID)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, run(ctx, env, "feed", "--subscriber", "ada").stdout, "0 unread")
	r = run(ctx, env, "feed", "--subscriber", "ada", "--read", "dlv_nope")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, "no such item")

	r = run(ctx, env, "feed", "--subscriber", "ada", "--tenant", "other")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "0 unread", "another tenant's ada")
	r = run(ctx, env, "feed", "--subscriber", "ada@example.com")
	assert.Equal(t, exitInput, r.code)
	assert.Contains(t, r.stderr, "--subscriber")

	r = run(ctx, env, "subscriber-token", "--subscriber", "ada")
	assert.Equal(t, exitInput, r.code)
	assert.Contains(t, r.stderr, feed.EnvTokenSecret)
	secretFile := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secretFile, []byte("0123456789abcdef0123456789abcdef\n"), 0o600))
	env = env.with(feed.EnvTokenSecret+FileSuffix, secretFile)
	r = run(ctx, env, "subscriber-token", "--subscriber", "ada", "--ttl", "5m")
	require.Equal(t, exitOK, r.code, r.stderr)
	tok := strings.TrimSpace(r.stdout)
	assert.True(t, strings.HasPrefix(tok, feed.TokenPrefix))

	// onceflow api serves the feed to that token, from the same secret.
	addr := startAPI(t, env)
	get := func(sub string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/v1/subscribers/"+sub+"/feed", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	require.Eventually(t, func() bool { code, _ := get("ada"); return code != 0 }, 10*time.Second, 50*time.Millisecond)
	code, body := get("ada")
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, "Hello Ada")
	code, _ = get("bob")
	assert.Equal(t, http.StatusForbidden, code)

	// onceflow revoke refuses the token from then on, in its tenant only.
	r = run(ctx, env, "revoke", "--subscriber", "ada", "--tenant", "other")
	require.Equal(t, exitOK, r.code, r.stderr)
	code, body = get("ada")
	assert.Equal(t, http.StatusOK, code, "another tenant's ada was revoked: %s", body)
	r = run(ctx, env, "revoke", "--subscriber", "ada")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "subscriber ada: subscriber tokens and unsubscribe links issued until ")
	code, body = get("ada")
	assert.Equal(t, http.StatusUnauthorized, code, body)
	assert.Contains(t, body, "revoked")
	r = run(ctx, env, "revoke", "--subscriber", "ada@example.com")
	assert.Equal(t, exitInput, r.code)
	assert.Contains(t, r.stderr, "--subscriber")
	r = run(ctx, env.with("REDIS_URL", ""), "revoke", "--subscriber", "ada")
	assert.Equal(t, exitInput, r.code)
	assert.Contains(t, r.stderr, "REDIS_URL")

	// and so does the API's route, which onceflow api serves.
	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/subscribers/ada/revoke", nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// On a Redis Cluster whose writes must reach a replica, an in-app delivery
// writes its item and commits its record in one script on the
// subscriber's slot, and waits for the replica.
func TestInAppOnARedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Temporal and a 6-node Redis Cluster")
	}
	cluster, err := testenv.StartCluster(t.TempDir(), "")
	require.NoError(t, err)
	t.Cleanup(cluster.Cleanup)
	env := cliEnvWith(t, mapEnv{"REDIS_URL": cluster.URL(), "ONCEFLOW_REDIS_WAIT_REPLICAS": "1"})
	ctx := context.Background()
	for range 2 {
		r := run(ctx, env, "send", "--key", "cluster-welcome", "--channel", "inapp", "--to", "ada", "--body", "Hello Ada", "--wait")
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Contains(t, r.stdout, "delivered")
	}
	r := run(ctx, env, "feed", "--subscriber", "ada", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var page feed.Page
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &page))
	require.Len(t, page.Items, 1)
	assert.Equal(t, "Hello Ada", page.Items[0].Body)
}
