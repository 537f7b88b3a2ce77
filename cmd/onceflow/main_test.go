package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/freeport"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/internal/teststack"
	"github.com/onceflow/onceflow/worker"
)

// mapEnv is the environment a command sees in a test.
type mapEnv map[string]string

func (e mapEnv) Environ() []string {
	var out []string
	for k, v := range e {
		out = append(out, k+"="+v)
	}
	return out
}

func (e mapEnv) LookupEnv(k string) (string, bool) { v, ok := e[k]; return v, ok }

// with returns a copy of e with the variables in kv (name, value, ...) set.
// Tests change a command's environment through a copy: the worker that
// cliEnv started reads e for as long as the test runs.
func (e mapEnv) with(kv ...string) mapEnv {
	c := make(mapEnv, len(e)+len(kv)/2)
	for k, v := range e {
		c[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		c[kv[i]] = kv[i+1]
	}
	return c
}

type result struct {
	code           int
	stdout, stderr string
}

func run(ctx context.Context, env mapEnv, args ...string) result {
	var out, errOut testenv.Buffer
	code := newApp(&out, &errOut, env).run(ctx, args)
	return result{code, out.String(), errOut.String()}
}

// cliEnv starts Temporal and Redis, runs `onceflow worker` in-process and
// returns the environment that points commands at them.
func cliEnv(t *testing.T) mapEnv { return cliEnvWith(t, nil) }

// cliEnvWith is cliEnv with the variables in extra set for every command,
// the worker included.
func cliEnvWith(t *testing.T, extra mapEnv) mapEnv {
	ts := teststack.NewTemporal(temporaltest.WithT(t))
	// The worker registers them too, but sends may come before it has.
	require.NoError(t, worker.RegisterSearchAttributes(context.Background(), ts.GetDefaultClient(), ts.GetDefaultNamespace()))
	rds, err := testenv.StartRedis(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(rds.Stop)
	env := mapEnv{
		"TEMPORAL_ADDRESS":         ts.GetFrontendHostPort(),
		"TEMPORAL_NAMESPACE":       ts.GetDefaultNamespace(),
		"REDIS_URL":                "redis://" + rds.Addr + "/0",
		"ONCEFLOW_WEBHOOK_SECRET":  testenv.WebhookSecret,
		"ONCEFLOW_TASK_QUEUE":      "cli-test",
		"ONCEFLOW_ATTEMPT_TIMEOUT": "5s",
		// The receivers listen on loopback, which the worker refuses by default.
		"ONCEFLOW_EGRESS_ALLOW": "127.0.0.0/8",
	}
	for k, v := range extra {
		env[k] = v
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan result, 1)
	go func() { done <- run(ctx, env, "worker") }()
	t.Cleanup(func() {
		stop()
		select {
		case r := <-done:
			assert.Equal(t, exitOK, r.code, "worker stops cleanly: %s", r.stderr)
			assert.Contains(t, r.stderr, "Worker stopped")
		case <-time.After(30 * time.Second):
			t.Error("worker did not stop within 30s of its signal")
		}
	})
	return env
}

func TestSendWaitAndStatus(t *testing.T) {
	env := cliEnv(t)
	rcv := testenv.NewReceiver(t)
	ctx := context.Background()

	r := run(ctx, env, "send", "--key", "order-42-shipped", "--channel", "webhook", "--to", rcv.URL+"/hook",
		"--subject", "Shipped", "--body", "On its way", "--wait")
	require.Equal(t, exitOK, r.code, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	assert.Equal(t, "notification/order-42-shipped", lines[0])
	assert.Contains(t, r.stdout, "delivered")
	id := onceflow.Delivery{Channel: onceflow.Webhook, To: rcv.URL + "/hook"}.ID("order-42-shipped")
	assert.Equal(t, 1, rcv.Raw(id))

	r = run(ctx, env, "status", "order-42-shipped")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "notification/order-42-shipped completed")
	assert.Regexp(t, `webhook\s+\S+/hook\s+delivered\s+1\s+HTTP 200`, r.stdout)

	// The same send again joins the finished notification: nothing is re-sent.
	r = run(ctx, env, "send", "--key", "order-42-shipped", "--channel", "webhook", "--to", rcv.URL+"/hook",
		"--subject", "Shipped", "--body", "On its way", "--wait")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, 1, rcv.Raw(id))

	// The key with another body is refused.
	r = run(ctx, env, "send", "--key", "order-42-shipped", "--channel", "webhook", "--to", rcv.URL+"/hook", "--body", "changed")
	assert.Equal(t, exitInput, r.code)
	assert.Contains(t, r.stderr, "different payload")
}

func TestSendRefusesAKeyReusedAfterItsWorkflowWasDeleted(t *testing.T) {
	env := cliEnv(t)
	rcv := testenv.NewReceiver(t)
	ctx := context.Background()
	send := func(body string, more ...string) result {
		return run(ctx, env, append([]string{"send", "--key", "order-7-shipped", "--channel", "webhook", "--to", rcv.URL + "/hook", "--body", body}, more...)...)
	}
	r := send("On its way", "--wait")
	require.Equal(t, exitOK, r.code, r.stderr)

	// Temporal's retention passes; the dedup records (REDIS_URL) live on.
	tc, err := client.Dial(client.Options{HostPort: env["TEMPORAL_ADDRESS"], Namespace: env["TEMPORAL_NAMESPACE"]})
	require.NoError(t, err)
	defer tc.Close()
	teststack.DeleteWorkflow(t, tc, env["TEMPORAL_NAMESPACE"], "notification/order-7-shipped")

	r = send("Cancelled")
	assert.Equal(t, exitInput, r.code, r.stderr)
	assert.Contains(t, r.stderr, "different payload")
	assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)
	r = run(ctx, env, "status", "order-7-shipped")
	assert.Equal(t, exitInput, r.code, "nothing was started: %s", r.stdout)

	// The same payload again is no conflict: its delivery is suppressed.
	r = send("On its way", "--wait")
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "suppressed")
	assert.Len(t, rcv.Headers(), 1, "sent once in all")
}

func TestPing(t *testing.T) {
	env := cliEnv(t)
	r := run(context.Background(), env, "ping")
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "temporal ok, redis ok")

	r = run(context.Background(), env.with("REDIS_URL", "redis://127.0.0.1:1/0"), "ping")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, "REDIS_URL")
}

func TestSendFileAndFailedDeliveryExitCode(t *testing.T) {
	env := cliEnv(t)
	ok := testenv.NewReceiver(t)
	gone := testenv.NewReceiver(t, testenv.Statuses(410))
	path := filepath.Join(t.TempDir(), "n.json")
	require.NoError(t, os.WriteFile(path, []byte(`{
		"key": "invoice-9",
		"subject": "Invoice",
		"body": "Invoice 9 is ready",
		"deliveries": [
			{"channel": "webhook", "to": "`+ok.URL+`/a"},
			{"channel": "webhook", "to": "`+gone.URL+`/b"}
		]
	}`), 0o600))

	r := run(context.Background(), env, "send", "--file", path, "--wait")
	assert.Equal(t, exitFailure, r.code, "one delivery failed: %s", r.stderr)
	assert.Regexp(t, `/a\s+delivered`, r.stdout)
	assert.Regexp(t, `/b\s+failed\s+1\s+-\s+webhook: receiver answered HTTP 410 Gone`, r.stdout)
}

func TestCancelBeforeSendAt(t *testing.T) {
	env := cliEnv(t)
	rcv := testenv.NewReceiver(t)
	ctx := context.Background()
	at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)

	r := run(ctx, env, "send", "--key", "reminder-1", "--channel", "webhook", "--to", rcv.URL, "--body", "Tomorrow", "--send-at", at)
	require.Equal(t, exitOK, r.code, r.stderr)
	r = run(ctx, env, "status", "reminder-1")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "running")
	assert.Contains(t, r.stdout, "pending")

	r = run(ctx, env, "cancel", "reminder-1")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Eventually(t, func() bool {
		r = run(ctx, env, "status", "reminder-1")
		return strings.Contains(r.stdout, "cancelled")
	}, 20*time.Second, 100*time.Millisecond)
	assert.Contains(t, r.stdout, "cancelled")
	assert.Empty(t, rcv.Headers(), "nothing was sent")
}

// TestBadInputNamesTheProblem needs no servers: input is checked first.
func TestBadInputNamesTheProblem(t *testing.T) {
	dir := t.TempDir()
	unknown := filepath.Join(dir, "unknown.json")
	require.NoError(t, os.WriteFile(unknown, []byte(`{"key":"k","deliveries":[{"channel":"webhook","to":"https://x.example"}],"body":"b","colour":"red"}`), 0o600))
	env := mapEnv{"TEMPORAL_ADDRESS": "127.0.0.1:1"}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"send", "--key", "k", "--channel", "webhook", "--to", "ftp://x", "--body", "b"}, "deliveries[0].to"},
		{[]string{"send", "--key", "k", "--channel", "pigeon", "--to", "x", "--body", "b"}, "deliveries[0].channel"},
		{[]string{"send", "--key", "has space", "--channel", "webhook", "--to", "https://x.example", "--body", "b"}, "key"},
		{[]string{"send", "--key", "k", "--channel", "webhook", "--to", "https://x.example"}, "body is required"},
		{[]string{"send", "--key", "k", "--body", "b"}, "deliveries must list"},
		{[]string{"send", "--key", "k", "--channel", "webhook", "--to", "https://x.example", "--body", "b", "--send-at", "tomorrow"}, "--send-at"},
		{[]string{"send", "--bogus"}, "-bogus"},
		{[]string{"send", "--file", unknown}, "colour is not a notification field"},
		{[]string{"send", "--file", filepath.Join(dir, "missing.json")}, "--file"},
		{[]string{"send", "--file", unknown, "--key", "k"}, "--key"},
		{[]string{"status"}, "one argument"},
		{[]string{"status", "bad key"}, "key"},
		{[]string{"frobnicate"}, "unknown command"},
	}
	for _, c := range cases {
		r := run(context.Background(), env, c.args...)
		assert.Equal(t, exitInput, r.code, "%v: %s", c.args, r.stderr)
		assert.Contains(t, r.stderr, c.want, "%v", c.args)
		assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "%v: one line: %q", c.args, r.stderr)
	}
}

func TestWorkerRefusesBadConfiguration(t *testing.T) {
	r := run(context.Background(), mapEnv{"ONCEFLOW_DEDUP_WINDOW": "forever"}, "worker")
	assert.Equal(t, exitInput, r.code)
	assert.Contains(t, r.stderr, "ONCEFLOW_DEDUP_WINDOW")
	r = run(context.Background(), mapEnv{"ONCEFLOW_EGRESS_ALLOW": "10.0.0.0/33"}, "worker")
	assert.Equal(t, exitInput, r.code)
	assert.Contains(t, r.stderr, `ONCEFLOW_EGRESS_ALLOW: "10.0.0.0/33" is not a network`)

	ts := temporaltest.NewServer(temporaltest.WithT(t))
	r = run(context.Background(), mapEnv{
		"TEMPORAL_ADDRESS": ts.GetFrontendHostPort(), "TEMPORAL_NAMESPACE": ts.GetDefaultNamespace(),
	}, "worker")
	assert.NotEqual(t, exitOK, r.code)
	assert.Contains(t, r.stderr, "ONCEFLOW_WEBHOOK_SECRET")

	r = run(context.Background(), mapEnv{
		"TEMPORAL_ADDRESS": ts.GetFrontendHostPort(), "TEMPORAL_NAMESPACE": ts.GetDefaultNamespace(),
		"ONCEFLOW_WEBHOOK_SECRET": testenv.WebhookSecret, "REDIS_URL": "redis://127.0.0.1:1/0",
	}, "worker")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, "REDIS_URL")
}

func TestAPIServesUntilStopped(t *testing.T) {
	rcv := testenv.NewReceiver(t)
	port, err := freeport.Get()
	require.NoError(t, err)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	env := cliEnv(t).with("ONCEFLOW_API_ADDR", addr)

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan result, 1)
	go func() { done <- run(ctx, env, "api") }()

	var resp *http.Response
	require.Eventually(t, func() bool {
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/notifications",
			strings.NewReader(`{"body":"hi","deliveries":[{"channel":"webhook","to":"`+rcv.URL+`"}]}`))
		req.Header.Set("Idempotency-Key", `"api-cli-1"`)
		req.Header.Set("Content-Type", "application/json")
		resp, err = http.DefaultClient.Do(req)
		return err == nil
	}, 10*time.Second, 50*time.Millisecond)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Eventually(t, func() bool { return len(rcv.Headers()) == 1 }, 20*time.Second, 50*time.Millisecond)
	r := run(context.Background(), env, "ping", "--api", "http://"+addr)
	assert.Equal(t, exitOK, r.code, r.stderr)

	stop()
	select {
	case r := <-done:
		assert.Equal(t, exitOK, r.code, r.stderr)
	case <-time.After(15 * time.Second):
		t.Fatal("api did not stop")
	}
}
