package devstack_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/httpapi"
	"github.com/onceflow/onceflow/internal/devstack"
	"github.com/onceflow/onceflow/internal/freeport"
	"github.com/onceflow/onceflow/internal/redisproc"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/providers/webhook"
	"github.com/onceflow/onceflow/starter"
	"github.com/onceflow/onceflow/worker"
	"github.com/onceflow/onceflow/workflows"
)

func freePort(t testing.TB) int {
	port, err := freeport.Get()
	require.NoError(t, err)
	return port
}

func config(t testing.TB, dataDir string, logs io.Writer) devstack.Config {
	wcfg, err := worker.LoadConfig(func(string) string { return "" })
	require.NoError(t, err)
	wcfg.Policy.AttemptTimeout = 5 * time.Second
	return devstack.Config{
		DataDir:      dataDir,
		TemporalPort: freePort(t),
		UIPort:       freePort(t),
		APIAddr:      "127.0.0.1:0",
		Workers:      2,
		Worker:       wcfg,
		Logger:       slog.New(slog.NewTextHandler(logs, nil)),
	}
}

func start(t testing.TB, cfg devstack.Config) *devstack.Stack {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := devstack.Start(ctx, cfg)
	require.NoError(t, err)
	return s
}

func post(t *testing.T, apiURL, key, to string) {
	postJSON(t, apiURL, key, `{"subject":"Hi","body":"Hello from the dev stack","deliveries":[{"channel":"webhook","to":"`+to+`"}]}`)
}

func TestDevStackDeliversAndKeepsItsDataAcrossRestarts(t *testing.T) {
	t.Run("stopped", func(t *testing.T) { deliverRestartAndSuppress(t, (*devstack.Stack).Stop) })
	// As when the OOM killer picks redis-server: it flushes nothing, and
	// the record must come back from what its append-only file already had.
	t.Run("redis-server SIGKILLed", func(t *testing.T) {
		deliverRestartAndSuppress(t, func(s *devstack.Stack) { killRedis(t, s); s.Stop() })
	})
}

// killRedis kills the dev stack's redis-server with SIGKILL, once what it
// acknowledged is in its append-only file.
func killRedis(t *testing.T, s *devstack.Stack) {
	time.Sleep(redisproc.KillSafeAfter)
	opts, err := redis.ParseURL(s.RedisURL)
	require.NoError(t, err)
	rdb := redis.NewClient(opts)
	defer func() { _ = rdb.Close() }()
	ctx := context.Background()
	info, err := rdb.InfoMap(ctx, "server").Result()
	require.NoError(t, err)
	pid, err := strconv.Atoi(info["Server"]["process_id"])
	require.NoError(t, err)
	proc, err := os.FindProcess(pid)
	require.NoError(t, err)
	require.NoError(t, proc.Kill(), "SIGKILL redis-server")
	require.Eventually(t, func() bool { return rdb.Ping(ctx).Err() != nil }, 5*time.Second, 10*time.Millisecond, "redis-server is gone")
}

// deliverRestartAndSuppress delivers a notification through a dev stack,
// takes it down with stop, starts it again on the same data directory and
// checks that the workflow and the dedup record are both still there.
func deliverRestartAndSuppress(t *testing.T, stop func(*devstack.Stack)) {
	dir := t.TempDir()
	var logs testenv.Buffer
	cfg := config(t, dir, &logs)
	cfg.FeedOrigins = []string{"http://app.localhost:3000"}
	s := start(t, cfg)
	assert.Equal(t, devstack.RedisServer, s.RedisKind, "redis-server is installed, so it is used")
	assertFeedAllowsOrigin(t, s.APIURL, "http://app.localhost:3000")
	rcv := testenv.NewReceiver(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	post(t, s.APIURL, "dev-order-1", rcv.URL)
	c := starter.New(s.Client, "")
	res, err := c.Wait(ctx, "dev-order-1")
	require.NoError(t, err)
	require.Len(t, res.Deliveries, 1)
	assert.Equal(t, onceflow.Delivered, res.Deliveries[0].Status)

	// The Web UI's list is a visibility query; so is this.
	require.Eventually(t, func() bool {
		resp, err := s.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: devstack.Namespace, Query: `OnceflowStatus="delivered" AND OnceflowChannels="webhook"`,
		})
		return err == nil && len(resp.GetExecutions()) == 1 &&
			resp.GetExecutions()[0].GetExecution().GetWorkflowId() == workflows.ID("dev-order-1")
	}, 20*time.Second, 100*time.Millisecond)
	stop(s)

	// Started again on the same data directory: the workflow and the dedup
	// record are both still there.
	cfg.TemporalPort, cfg.UIPort = freePort(t), freePort(t)
	s = start(t, cfg)
	defer s.Stop()
	st, err := starter.New(s.Client, "").Status(ctx, "dev-order-1")
	require.NoError(t, err)
	assert.Equal(t, "completed", st.Execution)
	again := newRun(ctx, t, s, "dev-order-1", rcv.URL)
	assert.Equal(t, onceflow.Suppressed, again.Deliveries[0].Status, "the dedup record survived in Redis's append-only file")
	assert.Len(t, rcv.Headers(), 1)
}

func TestWebUIListsTheNotification(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the Web UI in Chromium; -short skips it")
	}
	chromium, err := exec.LookPath("chromium")
	require.NoError(t, err, "the Web UI test needs Debian's chromium (apt-get install -y chromium)")
	var logs testenv.Buffer
	s := start(t, config(t, t.TempDir(), &logs))
	defer s.Stop()
	rcv := testenv.NewReceiver(t)
	post(t, s.APIURL, "dev-ui-1", rcv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = starter.New(s.Client, "").Wait(ctx, "dev-ui-1")
	require.NoError(t, err)

	var dom string
	require.Eventually(t, func() bool {
		out, err := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir="+t.TempDir(), "--virtual-time-budget=15000", "--dump-dom",
			s.UIURL+"/namespaces/"+devstack.Namespace+"/workflows").Output()
		dom = string(out)
		return err == nil && strings.Contains(dom, workflows.ID("dev-ui-1"))
	}, 45*time.Second, time.Second, "the workflow list page never showed the workflow")
	assert.Contains(t, dom, "NotificationWorkflow")
}

func TestWithoutRedisServerItFallsBackToInMemoryAndSaysSo(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no redis-server to be found
	var logs testenv.Buffer
	cfg := config(t, t.TempDir(), &logs)
	cfg.UIPort = 0
	s := start(t, cfg)
	defer s.Stop()
	assert.Equal(t, devstack.RedisInMemory, s.RedisKind)
	assert.Contains(t, logs.String(), "will NOT survive a restart")

	rcv := testenv.NewReceiver(t)
	post(t, s.APIURL, "dev-mem-1", rcv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := starter.New(s.Client, "").Wait(ctx, "dev-mem-1")
	require.NoError(t, err)
	assert.Equal(t, onceflow.Delivered, res.Deliveries[0].Status)
}

func TestDemoReceiverTakesSignedWebhooks(t *testing.T) {
	var logs testenv.Buffer
	cfg := config(t, t.TempDir(), &logs)
	cfg.UIPort = 0
	s := start(t, cfg)
	defer s.Stop()
	post(t, s.APIURL, "dev-demo-1", s.APIURL+devstack.DemoWebhookPath)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := starter.New(s.Client, "").Wait(ctx, "dev-demo-1")
	require.NoError(t, err)
	assert.Equal(t, onceflow.Delivered, res.Deliveries[0].Status, res.Deliveries[0].Reason)
	assert.Contains(t, logs.String(), "signature valid")

	// An unsigned request is refused.
	resp, err := http.Post(s.APIURL+devstack.DemoWebhookPath, "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

// signatureChecker is a partner's webhook endpoint: it verifies every
// request's Standard Webhooks signature under key, answers 204 when it
// holds and 401 (which fails the delivery) when it does not.
type signatureChecker struct {
	URL               string
	verified, refused atomic.Int32
}

func newSignatureChecker(t *testing.T, key []byte) *signatureChecker {
	c := &signatureChecker{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !webhook.Verify(key, r.Header, body) {
			c.refused.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		c.verified.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

// startWithoutUI starts a dev stack without the Web UI on a new data
// directory, and returns it with the configuration to start it again.
func startWithoutUI(t *testing.T) (*devstack.Stack, devstack.Config) {
	var logs testenv.Buffer
	cfg := config(t, t.TempDir(), &logs)
	cfg.UIPort = 0
	return start(t, cfg), cfg
}

// startAgain starts a dev stack again on cfg's data directory.
func startAgain(t *testing.T, cfg devstack.Config) *devstack.Stack {
	cfg.TemporalPort = freePort(t)
	return start(t, cfg)
}

func TestDataDirectoryKeepsTheWebhookSecretAcrossRestarts(t *testing.T) {
	s, cfg := startWithoutUI(t)
	path := filepath.Join(cfg.DataDir, "webhook-secret")
	secret, err := os.ReadFile(path)
	require.NoError(t, err)
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "the secret is readable by its owner only")
	// The partner set up its receiver with the secret of the first start.
	key, err := webhook.ParseSecret(strings.TrimSpace(string(secret)))
	require.NoError(t, err)
	partner := newSignatureChecker(t, key)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	deliver := func(s *devstack.Stack, key string) {
		t.Helper()
		post(t, s.APIURL, key, partner.URL)
		res, err := starter.New(s.Client, "").Wait(ctx, key)
		require.NoError(t, err)
		require.Len(t, res.Deliveries, 1)
		assert.Equal(t, onceflow.Delivered, res.Deliveries[0].Status, res.Deliveries[0].Reason)
	}
	deliver(s, "dev-secret-1")
	s.Stop()

	s = startAgain(t, cfg)
	defer s.Stop()
	deliver(s, "dev-secret-2")
	assert.EqualValues(t, 2, partner.verified.Load(), "both deliveries carried a valid signature")
	assert.Zero(t, partner.refused.Load(), "no signature failed to verify")
}

func TestSendAtIsKeptAcrossARestartOfTheDevStack(t *testing.T) {
	s, cfg := startWithoutUI(t)
	var mu sync.Mutex
	var arrivals []time.Time
	rcv := testenv.NewReceiver(t, testenv.Answer(func(string, int) int {
		mu.Lock()
		defer mu.Unlock()
		arrivals = append(arrivals, time.Now())
		return http.StatusOK
	}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	due := time.Now().Add(8 * time.Second)
	n := onceflow.Notification{
		Key: "dev-later-1", Subject: "Reminder", Body: "Your appointment is soon", SendAt: &due,
		Deliveries: []onceflow.Delivery{{Channel: onceflow.Webhook, To: rcv.URL}},
	}
	_, err := starter.New(s.Client, "").Send(ctx, n)
	require.NoError(t, err)
	s.Stop()
	require.True(t, time.Now().Before(due), "the dev stack stopped before the notification was due")
	assert.Empty(t, rcv.Headers(), "nothing was sent before the stop")

	s = startAgain(t, cfg)
	defer s.Stop()
	t.Logf("restarted %v before the notification was due", time.Until(due).Round(time.Millisecond))
	res, err := starter.New(s.Client, "").Wait(ctx, n.Key)
	require.NoError(t, err)
	require.Len(t, res.Deliveries, 1)
	assert.Equal(t, onceflow.Delivered, res.Deliveries[0].Status, res.Deliveries[0].Reason)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, arrivals, 1, "delivered once")
	assert.False(t, arrivals[0].Before(due), "delivered at %v, before its send_at %v", arrivals[0], due)
}

// newRun starts a new run of the notification post sent under key to
// webhook URL to, as happens once retention has deleted the earlier run,
// and returns its result.
func newRun(ctx context.Context, t *testing.T, s *devstack.Stack, key, to string) onceflow.Result {
	t.Helper()
	run, err := s.Client.ExecuteWorkflow(ctx, clientOptionsForNewRun(key), workflows.Name, onceflow.Notification{
		Key: key, Subject: "Hi", Body: "Hello from the dev stack",
		Deliveries: []onceflow.Delivery{{Channel: onceflow.Webhook, To: to}},
	})
	require.NoError(t, err)
	var res onceflow.Result
	require.NoError(t, run.Get(ctx, &res))
	require.Len(t, res.Deliveries, 1)
	return res
}

// clientOptionsForNewRun starts a new run for a used key, as happens once
// retention has deleted the earlier run.
func clientOptionsForNewRun(key string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID: workflows.ID(key), TaskQueue: workflows.DefaultTaskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}
}

// assertFeedAllowsOrigin checks that a browser page at origin may read
// feeds from the dev stack's API (a CORS preflight of the feed's stream).
func assertFeedAllowsOrigin(t *testing.T, apiURL, origin string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodOptions, apiURL+"/v1/subscribers/user-42/feed/stream", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", http.MethodGet)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, origin, resp.Header.Get("Access-Control-Allow-Origin"), "the dev stack serves the feed to pages at its ONCEFLOW_FEED_ORIGINS")
}

// The dev stack's API limits its public routes as `onceflow api` does:
// with a budget of one feed request per address, a browser's second
// request is refused with 429 and Retry-After.
func TestDevStackLimitsThePublicRoutes(t *testing.T) {
	cfg := config(t, t.TempDir(), io.Discard)
	cfg.UIPort, cfg.Workers = 0, 0
	limits, err := httpapi.LoadLimits(func(name string) string {
		return map[string]string{"ONCEFLOW_FEED_LIMIT_PER_ADDRESS": "1/1m"}[name]
	})
	require.NoError(t, err)
	cfg.Limits = limits
	s := start(t, cfg)
	defer s.Stop()
	resp, err := http.Post(s.APIURL+"/v1/subscribers/dev-limited/tokens", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	var minted struct{ Token string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&minted))
	_ = resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	get := func() *http.Response {
		req, err := http.NewRequest("GET", s.APIURL+"/v1/subscribers/dev-limited/feed", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+minted.Token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp
	}
	assert.Equal(t, http.StatusOK, get().StatusCode)
	refused := get()
	assert.Equal(t, http.StatusTooManyRequests, refused.StatusCode)
	assert.NotEmpty(t, refused.Header.Get("Retry-After"))
}
