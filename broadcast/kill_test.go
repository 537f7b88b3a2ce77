package broadcast_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/broadcast"
	"github.com/onceflow/onceflow/broadcast/recipients"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/internal/teststack"
	"github.com/onceflow/onceflow/starter"
)

// TestBroadcastSurvivesAWorkerKilledMidChunk runs a broadcast on an
// `onceflow worker` process, kills it with SIGKILL while its chunks are
// sending, and lets an in-process worker finish: every recipient is
// applied once by a receiver that deduplicates, and only the sends that
// were in flight at the kill go out again (the chunks' heartbeats carried
// the rest), with the same delivery IDs.
func TestBroadcastSurvivesAWorkerKilledMidChunk(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the onceflow binary")
	}
	bin := filepath.Join(t.TempDir(), "onceflow")
	out, err := exec.Command("go", "build", "-tags", "nodev", "-o", bin, "github.com/onceflow/onceflow/cmd/onceflow").CombinedOutput()
	require.NoError(t, err, "%s", out)

	const total, inFlight = 600, 2 * 32 // two chunks at once, 32 sends each
	queue := "q-" + strings.ReplaceAll(t.Name(), "/", "-")
	// Every first request is applied, then answered 200ms later, so the
	// kill finds sends in flight.
	rcv := testenv.NewReceiver(t, testenv.Dedup(), testenv.Slow(1, 200*time.Millisecond))
	var logs testenv.Buffer
	w := exec.Command(bin, "worker")
	w.Env = append(os.Environ(),
		"TEMPORAL_ADDRESS="+servers.Temporal.GetFrontendHostPort(), "TEMPORAL_NAMESPACE="+servers.Temporal.GetDefaultNamespace(),
		"REDIS_URL=redis://"+servers.Redis.Addr+"/0", "ONCEFLOW_WEBHOOK_SECRET="+testenv.WebhookSecret,
		"ONCEFLOW_TASK_QUEUE="+queue, "ONCEFLOW_ATTEMPT_TIMEOUT=3s", "ONCEFLOW_EGRESS_ALLOW=127.0.0.0/8")
	w.Stdout, w.Stderr = &logs, &logs
	require.NoError(t, w.Start())
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = w.Process.Kill()
			_ = w.Wait()
		}
	})

	c := broadcast.NewClient(starter.New(servers.Temporal.GetDefaultClient(), queue),
		recipients.New(servers.Redis.Client(t)), time.Hour).WithChunks(100, 2)
	b := broadcastTo(t, rcv.URL, total)
	ctx := teststack.Context(t)
	started, err := c.Send(ctx, b)
	require.NoError(t, err)

	require.Eventually(t, func() bool { return len(rcv.Log()) >= total/4 }, time.Minute, 10*time.Millisecond, "the worker process never got going:\n%s", logs.String())
	require.NoError(t, w.Process.Kill())
	_ = w.Wait()
	killed = true
	sentBeforeKill := len(rcv.Log())
	require.Less(t, sentBeforeKill, total, "the kill came too late to interrupt anything")

	servers.New(t, servers.WorkerConfig(), nil) // takes over the task queue
	st, err := c.Wait(ctx, b.Key, 200*time.Millisecond, nil)
	require.NoError(t, err)
	assert.Equal(t, "completed", st.Execution)
	testenv.RecordHistory(t, servers.Temporal.GetDefaultClient(), started.WorkflowID, started.RunID, "broadcast/worker_killed_mid_chunk")
	assert.Zero(t, st.Failed+st.Pending, "%s %v", st.Progress(), st.Problems)
	assert.Equal(t, total, st.Delivered+st.Ambiguous, st.Progress())
	// A recipient whose send and commit the dead worker made after its
	// chunk's last heartbeat is delivered by this broadcast, not a repeat.
	assert.Zero(t, st.Suppressed, st.Progress())
	// A recipient claimed by the dead worker, whose send may or may not
	// have left it, is re-sent with the same ID; where the receiver does
	// not answer it as a repeat (the dead worker had not sent it), it is
	// reported ambiguous rather than hidden.
	assert.LessOrEqual(t, st.Ambiguous, inFlight)
	for _, p := range st.Problems {
		assert.Contains(t, p.Reason, "an earlier attempt may have sent it")
	}

	resent := 0
	for _, id := range deliveryIDs(b) {
		require.Equal(t, 1, rcv.Applied(id), "recipient %s applied once", id)
		resent += rcv.Raw(id) - 1
	}
	t.Logf("%d requests before the kill, %d sent again after it; %s", sentBeforeKill, resent, st.Progress())
	assert.Positive(t, resent, "some sends were in flight at the kill")
	assert.LessOrEqual(t, resent, inFlight, "only the sends in flight at the kill went out again")
}
