package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/preferences"
)

func TestPreferencesCommandAndSkippedStatus(t *testing.T) {
	workerMetrics := loopbackAddr(t)
	env := cliEnvWith(t, mapEnv{
		EnvMetricsAddr:                    workerMetrics,
		preferences.EnvCriticalCategories: "security",
		preferences.EnvUnsubscribeSecret:  "cli-test-secret-0123456789abcdef0123456789",
		preferences.EnvPublicURL:          "https://notify.example.com",
	})
	ctx := context.Background()
	rcv := testenv.NewReceiver(t)

	r := run(ctx, env, "preferences", "set", "--subscriber", "user-3", "--tenant", "acme", "--opt-out", "marketing/webhook", "--opt-out", "*/sms")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, `marketing\s+webhook`, r.stdout)
	r = run(ctx, env, "preferences", "get", "--subscriber", "user-3", "--tenant", "acme", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.JSONEq(t, `{"opt_outs":[{"category":"*","channel":"sms"},{"category":"marketing","channel":"webhook"}]}`, r.stdout)
	r = run(ctx, env, "preferences", "get", "--subscriber", "user-3")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "no opt-outs", "the single tenant's user-3 is another subscriber")

	for args, want := range map[string]string{
		"set --subscriber user-3 --opt-out security/email":             "opt_outs[0].category",
		"set --subscriber user-3 --opt-out marketing/fax":              "opt_outs[0].channel",
		"set --subscriber user-3 --opt-out marketing":                  "CATEGORY/CHANNEL",
		"set --subscriber user-3":                                      "one of --opt-out",
		"get --subscriber ada@example.com":                             "subscriber",
		"link --subscriber user-3 --category security --channel email": "critical",
		"frobnicate --subscriber user-3":                               "get, set or link",
	} {
		r := run(ctx, env, append([]string{"preferences"}, strings.Fields(args)...)...)
		assert.Equal(t, exitInput, r.code, args)
		assert.Contains(t, r.stderr, want, args)
	}
	r = run(ctx, env.with("REDIS_URL", ""), "preferences", "get", "--subscriber", "user-3")
	assert.Equal(t, exitInput, r.code)
	assert.Contains(t, r.stderr, "REDIS_URL")

	r = run(ctx, env, "preferences", "link", "--subscriber", "user-3", "--tenant", "acme", "--category", "news", "--channel", "email")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.True(t, strings.HasPrefix(r.stdout, "https://notify.example.com/v1/unsubscribe/"), r.stdout)

	file := filepath.Join(t.TempDir(), "n.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"key":"cli-sale-1","subscriber":"user-3","category":"marketing","body":"Sale",
		"deliveries":[{"channel":"webhook","to":"`+rcv.URL+`/hook"}]}`), 0o600))
	r = run(ctx, env, "send", "--file", file, "--tenant", "acme", "--wait")
	require.Equal(t, exitOK, r.code, "a skipped delivery is not a failure: %s", r.stderr)
	assert.Contains(t, r.stdout, "skipped")
	assert.Empty(t, rcv.Log(), "nothing was sent")
	r = run(ctx, env, "status", "--tenant", "acme", "cli-sale-1")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, `webhook\s+\S+/hook\s+skipped\s+0\s+-\s+the subscriber opted out of category "marketing" on channel webhook`, r.stdout)
	metrics := get("http://" + workerMetrics + "/metrics")
	assert.True(t, strings.Contains(metrics, `onceflow_deliveries_total{channel="webhook",status="skipped"} 1`), "the worker counts the skipped delivery")
	assert.False(t, strings.Contains(metrics, `onceflow_provider_request_duration_seconds_count{channel="webhook"`), "and made no provider call")
}

// The unsubscribe secret may be a mounted file, like the other secrets:
// a short one is refused by name and length, its content never printed.
func TestUnsubscribeSecretIsReadFromAFile(t *testing.T) {
	const short = "not-32-bytes-long"
	env := mapEnv{"REDIS_URL": "redis://127.0.0.1:1/0", preferences.EnvUnsubscribeSecret + FileSuffix: writeSecret(t, short+"\n")}
	r := run(context.Background(), env, "preferences", "get", "--subscriber", "user-1")
	assert.Equal(t, exitInput, r.code)
	assert.Contains(t, r.stderr, "ONCEFLOW_UNSUBSCRIBE_SECRET: secret 1 is 17 bytes")
	assert.NotContains(t, r.stderr, short)
}
