package devstack_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/devstack"
	"github.com/onceflow/onceflow/internal/freeport"
	"github.com/onceflow/onceflow/internal/testenv"
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
	dir := t.TempDir()
	var logs testenv.Buffer
	cfg := config(t, dir, &logs)
	s := start(t, cfg)
	assert.Equal(t, devstack.RedisServer, s.RedisKind, "redis-server is installed, so it is used")
	rcv := testenv.NewReceiver(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	post(t, s.APIURL, "dev-order-1", rcv.URL)
	c := starter.New(s.Client, "")
	res, err := c.Wait(ctx, "dev-order-1")
	require.NoError(t, err)
	assert.Equal(t, onceflow.Delivered, res.Deliveries[0].Status)

	// The Web UI's list is a visibility query; so is this.
	require.Eventually(t, func() bool {
		resp, err := s.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: devstack.Namespace, Query: `OnceflowStatus="delivered" AND OnceflowChannels="webhook"`,
		})
		return err == nil && len(resp.GetExecutions()) == 1 &&
			resp.GetExecutions()[0].GetExecution().GetWorkflowId() == workflows.ID("dev-order-1")
	}, 20*time.Second, 100*time.Millisecond)
	s.Stop()

	// Started again on the same data directory: the workflow and the dedup
	// record are both still there.
	cfg.TemporalPort, cfg.UIPort = freePort(t), freePort(t)
	s = start(t, cfg)
	defer s.Stop()
	st, err := starter.New(s.Client, "").Status(ctx, "dev-order-1")
	require.NoError(t, err)
	assert.Equal(t, "completed", st.Execution)
	run, err := s.Client.ExecuteWorkflow(ctx, clientOptionsForNewRun("dev-order-1"), workflows.Name, onceflow.Notification{
		Key: "dev-order-1", Subject: "Hi", Body: "Hello from the dev stack",
		Deliveries: []onceflow.Delivery{{Channel: onceflow.Webhook, To: rcv.URL}},
	})
	require.NoError(t, err)
	require.NoError(t, run.Get(ctx, &res))
	assert.Equal(t, onceflow.Suppressed, res.Deliveries[0].Status, "the dedup record survived in Redis's append-only file")
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
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func TestDataDirectoryKeepsTheWebhookSecret(t *testing.T) {
	dir := t.TempDir()
	var logs testenv.Buffer
	cfg := config(t, dir, &logs)
	cfg.UIPort = 0
	s := start(t, cfg)
	s.Stop()
	secret, err := os.ReadFile(dir + "/webhook-secret")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(secret), "whsec_"))
	info, err := os.Stat(dir + "/webhook-secret")
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "the secret is readable by its owner only")
}

// clientOptionsForNewRun starts a new run for a used key, as happens once
// retention has deleted the earlier run.
func clientOptionsForNewRun(key string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID: workflows.ID(key), TaskQueue: workflows.DefaultTaskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}
}
