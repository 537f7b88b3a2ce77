package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/codec"
	"github.com/onceflow/onceflow/httpapi"
	"github.com/onceflow/onceflow/internal/freeport"
	"github.com/onceflow/onceflow/internal/testenv"
)

func TestAPIRefusesAPublicAddressWithoutTokens(t *testing.T) {
	// Temporal is not running: the refusal comes before any connection.
	env := mapEnv{"TEMPORAL_ADDRESS": "127.0.0.1:1"}
	for _, addr := range []string{":8080", "0.0.0.0:8080", "[::]:8080", "10.0.0.5:8080", "203.0.113.7:8080", "example.com:8080", "localhost.example.com:8080"} {
		r := run(context.Background(), env, "api", "--addr", addr)
		assert.Equal(t, exitInput, r.code, addr)
		assert.Contains(t, r.stderr, "refusing to serve the API on "+addr, addr)
		assert.Contains(t, r.stderr, "openssl rand -hex 32", "says how to make a token file")
		assert.Contains(t, r.stderr, "onceflow token --tenant")
		assert.NotContains(t, r.stderr, "connect to Temporal")
	}
	r := run(context.Background(), mapEnv{"TEMPORAL_ADDRESS": "127.0.0.1:1", EnvAPIAddr: "0.0.0.0:8080"}, "api")
	assert.Equal(t, exitInput, r.code, "the address from "+EnvAPIAddr+" too")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r = run(ctx, mapEnv{}, "dev", "--api-addr", "0.0.0.0:0", "--data-dir", t.TempDir())
	assert.Equal(t, exitInput, r.code, r.stderr)
	assert.Contains(t, r.stderr, "refusing to serve the API on 0.0.0.0:0")
}

func TestDevRefusesABadDatabaseWithoutShowingItsPassword(t *testing.T) {
	for _, r := range []result{
		run(context.Background(), mapEnv{}, "dev", "--data-dir", t.TempDir(), "--db", "mysql://temporal:hunter2@db/temporal"),
		run(context.Background(), mapEnv{"ONCEFLOW_DEV_DB": "mysql://temporal:hunter2@db/temporal"}, "dev", "--data-dir", t.TempDir()),
	} {
		assert.Equal(t, exitInput, r.code, r.stderr)
		assert.Contains(t, r.stderr, "--db mysql://temporal:xxxxx@db/temporal: the scheme must be postgres://")
		assert.NotContains(t, r.stderr+r.stdout, "hunter2")
	}
	r := run(context.Background(), mapEnv{}, "dev", "--data-dir", t.TempDir(), "--history-shards", "-2")
	assert.Equal(t, exitInput, r.code, r.stderr)
	assert.Contains(t, r.stderr, "--history-shards must be positive, got -2")
}

func TestLoopbackAddresses(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "127.3.2.1", "::1", "localhost", "::ffff:127.0.0.1"} {
		assert.True(t, isLoopback(host), host)
	}
	for _, host := range []string{"", "0.0.0.0", "::", "10.1.2.3", "192.168.0.1", "169.254.169.254", "example.com", "localhost.example.com", "128.0.0.1"} {
		assert.False(t, isLoopback(host), host)
	}
}

func TestTokenCommandPrintsATokenAndItsLine(t *testing.T) {
	r := run(context.Background(), mapEnv{}, "token", "--tenant", "acme")
	require.Equal(t, exitOK, r.code, r.stderr)
	var token, line string
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		switch {
		case strings.HasPrefix(l, "#"):
		case token == "":
			token = l
		default:
			line = l
		}
	}
	require.Len(t, token, 64)
	assert.Equal(t, httpapi.HashLine("acme", token), line)
	path := filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(path, []byte(line+"\n"), 0o600))
	tokens, err := httpapi.LoadTokens(path)
	require.NoError(t, err)
	tenant, ok := tokens.Tenant(token)
	assert.True(t, ok)
	assert.Equal(t, "acme", tenant)

	again := run(context.Background(), mapEnv{}, "token", "--tenant", "acme")
	assert.NotContains(t, again.stdout, token, "a new token each time")
	for _, bad := range [][]string{{"token"}, {"token", "--tenant", "ac/me"}, {"token", "--tenant", "acme", "extra"}} {
		assert.Equal(t, exitInput, run(context.Background(), mapEnv{}, bad...).code, bad)
	}
}

// runAPI runs `onceflow api` in env until the test ends, looking at its
// token file every poll, and returns its log.
func runAPI(t *testing.T, env mapEnv, poll time.Duration) *testenv.Buffer {
	ctx, stop := context.WithCancel(context.Background())
	stderr := &testenv.Buffer{}
	done := make(chan int, 1)
	a := newApp(&testenv.Buffer{}, stderr, env)
	a.tokensPoll = poll
	go func() { done <- a.run(ctx, []string{"api"}) }()
	t.Cleanup(func() {
		stop()
		select {
		case code := <-done:
			assert.Equal(t, exitOK, code, stderr.String())
		case <-time.After(15 * time.Second):
			t.Error("api did not stop")
		}
	})
	return stderr
}

// TestAPIRequiresTokensAndReloadsThemOnSIGHUP runs `onceflow api` with a
// token file: its routes and its codec endpoint refuse requests without a
// token, a tenant's notification is found with --tenant, and a SIGHUP
// swaps the tokens.
func TestAPIRequiresTokensAndReloadsThemOnSIGHUP(t *testing.T) {
	// SIGHUP's default action ends the process; this test's handler
	// keeps it alive whatever the API's does.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	const origin = "http://localhost:8233"
	const oldToken, newToken = "old-0123456789abcdef0123456789abcdef", "new-0123456789abcdef0123456789abcdef"
	env := cliEnvWith(t, mapEnv{codec.EnvKeys: testenv.CodecKeys, codec.EnvOrigins: origin})
	tokensFile := filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(tokensFile, []byte(httpapi.HashLine("acme", oldToken)+"\n"), 0o600))
	rcv := testenv.NewReceiver(t)
	port, err := freeport.Get()
	require.NoError(t, err)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	env = env.with(EnvAPIAddr, addr, httpapi.EnvTokensFile, tokensFile)

	stderr := runAPI(t, env, time.Hour) // SIGHUP, not the file's change, reloads here

	do := func(method, path, token, body string, header ...string) int {
		req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		require.NoError(t, err)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	notification := `{"body":"hi","deliveries":[{"channel":"webhook","to":"` + rcv.URL + `"}]}`
	require.Eventually(t, func() bool {
		return do("POST", "/v1/notifications", "", notification, "Idempotency-Key", `"cli-auth-1"`) == http.StatusUnauthorized
	}, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, http.StatusAccepted, do("POST", "/v1/notifications", oldToken, notification, "Idempotency-Key", `"cli-auth-1"`))
	require.Eventually(t, func() bool { return len(rcv.Headers()) == 1 }, 20*time.Second, 50*time.Millisecond)
	assert.Equal(t, 1, rcv.AppliedFor("cli-auth-1"), "the receiver sees the caller's key")

	// The operator finds acme's notification with --tenant, and only so.
	r := run(context.Background(), env, "status", "--tenant", "acme", "cli-auth-1")
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "notification/acme@cli-auth-1")
	r = run(context.Background(), env, "status", "cli-auth-1")
	assert.Equal(t, exitInput, r.code, "not the single tenant's")

	// The codec endpoint: tokens for encode and decode, none for the
	// browser's preflight.
	payloads := `{"payloads":[]}`
	assert.Equal(t, http.StatusUnauthorized, do("POST", "/codec/decode", "", payloads, "Content-Type", "application/json", "Origin", origin))
	assert.Equal(t, http.StatusUnauthorized, do("POST", "/codec/encode", "nope", payloads, "Content-Type", "application/json"))
	assert.Equal(t, http.StatusOK, do("POST", "/codec/decode", oldToken, payloads, "Content-Type", "application/json", "Origin", origin))
	assert.Equal(t, http.StatusNoContent, do("OPTIONS", "/codec/decode", "", "", "Origin", origin, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization"))

	// Rotate: the new token in, the old one out.
	require.NoError(t, os.WriteFile(tokensFile, []byte(httpapi.HashLine("acme", newToken)+"\n"), 0o600))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool {
		return do("GET", "/v1/notifications/cli-auth-1", newToken, "") == http.StatusOK
	}, 10*time.Second, 50*time.Millisecond, "the new token works after SIGHUP")
	assert.Equal(t, http.StatusUnauthorized, do("GET", "/v1/notifications/cli-auth-1", oldToken, ""), "the removed token is refused")
	assert.Equal(t, http.StatusUnauthorized, do("POST", "/codec/decode", oldToken, payloads, "Content-Type", "application/json"))

	// A broken file is logged and changes nothing.
	require.NoError(t, os.WriteFile(tokensFile, []byte("acme "+newToken+"\n"), 0o600))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "Could not reload the API tokens") }, 10*time.Second, 50*time.Millisecond)
	assert.Contains(t, stderr.String(), tokensFile+" line 1")
	assert.NotContains(t, stderr.String(), newToken, "the log does not repeat what is on the line")
	assert.Equal(t, http.StatusOK, do("GET", "/v1/notifications/cli-auth-1", newToken, ""))
}

// Without a signal: `onceflow api` re-reads its token file when it
// changes, so that an operator without a shell on the server (a
// Kubernetes secret volume) revokes a token by removing its line.
func TestAPIReloadsAChangedTokenFile(t *testing.T) {
	const oldToken, newToken = "old-0123456789abcdef0123456789abcdef", "new-0123456789abcdef0123456789abcdef"
	env := cliEnv(t)
	tokensFile := filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(tokensFile, []byte(httpapi.HashLine("acme", oldToken)+"\n"), 0o600))
	port, err := freeport.Get()
	require.NoError(t, err)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	env = env.with(EnvAPIAddr, addr, httpapi.EnvTokensFile, tokensFile)

	stderr := runAPI(t, env, 50*time.Millisecond)
	status := func(token string) int {
		req, err := http.NewRequest("GET", "http://"+addr+"/v1/notifications/nope", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	require.Eventually(t, func() bool { return status(oldToken) == http.StatusNotFound }, 10*time.Second, 50*time.Millisecond)
	assert.Equal(t, http.StatusUnauthorized, status(newToken))

	require.NoError(t, os.WriteFile(tokensFile, []byte(httpapi.HashLine("acme", newToken)+"\n"), 0o600))
	require.Eventually(t, func() bool { return status(oldToken) == http.StatusUnauthorized }, 10*time.Second, 50*time.Millisecond, "the removed token is refused")
	assert.Equal(t, http.StatusNotFound, status(newToken))

	require.NoError(t, os.WriteFile(tokensFile, []byte("acme "+newToken+"\n"), 0o600))
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "Could not reload the API tokens") }, 10*time.Second, 50*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	assert.Equal(t, 1, strings.Count(stderr.String(), "Could not reload the API tokens"), "once per change")
	assert.NotContains(t, stderr.String(), newToken)
	assert.Equal(t, http.StatusNotFound, status(newToken), "a broken file changes nothing")
}
