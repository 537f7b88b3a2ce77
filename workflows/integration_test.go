package workflows_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/activities"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/internal/teststack"
	"github.com/onceflow/onceflow/workflows"
)

var servers teststack.Servers

func TestMain(m *testing.M) { teststack.Main(m, &servers) }

// fastPolicy keeps attempts short so that faults resolve in seconds.
var fastPolicy = workflows.Policy{
	AttemptTimeout:   2 * time.Second,
	FirstRetry:       100 * time.Millisecond,
	MaxRetryInterval: time.Second,
	GiveUpAfter:      6 * time.Second,
}

// startWorker runs a worker wired as `onceflow worker` wires it, on its own
// task queue, with its dedup store wrapped by wrap when not nil.
func startWorker(t *testing.T, policy workflows.Policy, wrap func(activities.Store) activities.Store) (client.Client, string) {
	t.Helper()
	s := servers.NewWithPolicy(t, servers.WorkerConfig(), policy, wrap)
	return s.TC, s.Queue
}

// start starts n directly, as another SDK would: without the starter's
// checks.
func start(t *testing.T, tc client.Client, queue string, n onceflow.Notification) client.WorkflowRun {
	t.Helper()
	run, err := tc.ExecuteWorkflow(ctxFor(t), client.StartWorkflowOptions{
		ID: workflows.ID(n.Key), TaskQueue: queue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, workflows.Name, n)
	require.NoError(t, err)
	return run
}

func ctxFor(t *testing.T) context.Context { return teststack.Context(t) }

func finished(t *testing.T, run client.WorkflowRun) onceflow.DeliveryResult {
	t.Helper()
	var res onceflow.Result
	require.NoError(t, run.Get(ctxFor(t), &res))
	require.Len(t, res.Deliveries, 1)
	return res.Deliveries[0]
}

func history(t *testing.T, tc client.Client, run client.WorkflowRun) *historypb.History {
	t.Helper()
	var h historypb.History
	it := tc.GetWorkflowHistory(ctxFor(t), run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(t, err)
		h.Events = append(h.Events, e)
	}
	return &h
}

func replayWith(h *historypb.History, validate func(onceflow.Notification) error) error {
	r := sdkworker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(workflows.NewWithValidator(workflows.DefaultPolicy(), validate).Run, workflow.RegisterOptions{Name: workflows.Name})
	return r.ReplayWorkflowHistory(nil, h)
}

func webhookTo(t *testing.T, url string) onceflow.Notification {
	return onceflow.Notification{
		Key:        strings.ReplaceAll(t.Name(), "/", "-"),
		Subject:    "Order shipped",
		Body:       "Your order is on its way.",
		Deliveries: []onceflow.Delivery{{Channel: onceflow.Webhook, To: url + "/hooks"}},
	}
}

// TestValidationVerdictIsRecordedOnce: a notification's validity is decided
// when it starts; replaying its history under other rules decides nothing
// again, for a valid notification and for an invalid one.
func TestValidationVerdictIsRecordedOnce(t *testing.T) {
	tc, queue := startWorker(t, fastPolicy, nil)
	rcv := testenv.NewReceiver(t)

	valid := webhookTo(t, rcv.URL)
	valid.Key += "-valid"
	ok := start(t, tc, queue, valid)
	assert.Equal(t, onceflow.Delivered, finished(t, ok).Status)

	invalid := webhookTo(t, "ftp://files.example")
	invalid.Key += "-invalid"
	bad := start(t, tc, queue, invalid)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, bad.Get(ctxFor(t), nil), &appErr)
	assert.Equal(t, workflows.TypeInvalid, appErr.Type())
	assert.Contains(t, appErr.Error(), "deliveries[0].to")

	require.NoError(t, replayWith(history(t, tc, ok), rejectAll), "rules that now refuse a running notification")
	require.NoError(t, replayWith(history(t, tc, bad), acceptAll), "rules that now accept a refused notification")
	testenv.RecordHistory(t, tc, ok.GetID(), ok.GetRunID(), "validated_once_delivered")
	testenv.RecordHistory(t, tc, bad.GetID(), bad.GetRunID(), "validated_once_invalid")
}

// failAfterFirstClaim is a dedup store that Redis stops answering for one
// delivery right after that delivery's first claim: every later claim,
// commit and release fails, until the delivery gives up.
type failAfterFirstClaim struct {
	activities.Store
	deliveryID string
	mu         sync.Mutex
	claimed    bool
	// hangCommit makes the first attempt's commit hang until the attempt's
	// deadline, as when its worker dies between send and commit.
	hangCommit bool
}

var errUnreachable = errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")

func (s *failAfterFirstClaim) down(rec dedup.Record) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return rec.DeliveryID == s.deliveryID && s.claimed
}

func (s *failAfterFirstClaim) Claim(ctx context.Context, rec dedup.Record, token string, lease time.Duration) (dedup.Claim, error) {
	if s.down(rec) {
		return dedup.Claim{}, errUnreachable
	}
	c, err := s.Store.Claim(ctx, rec, token, lease)
	if rec.DeliveryID == s.deliveryID {
		s.mu.Lock()
		s.claimed = true
		s.mu.Unlock()
	}
	return c, err
}

func (s *failAfterFirstClaim) Commit(ctx context.Context, rec dedup.Record, token, receipt string, outcome dedup.Outcome) error {
	if s.down(rec) {
		if s.hangCommit {
			// Past the deadline, so that Temporal has timed the attempt
			// out before anything it returns arrives.
			<-ctx.Done()
			time.Sleep(time.Second)
		}
		return errUnreachable
	}
	return s.Store.Commit(ctx, rec, token, receipt, outcome)
}

func (s *failAfterFirstClaim) Release(ctx context.Context, rec dedup.Record, token string, maybeSent bool) error {
	if s.down(rec) {
		return errUnreachable
	}
	return s.Store.Release(ctx, rec, token, maybeSent)
}

// withFallback gives n's delivery a fallback to another receiver.
func withFallback(n onceflow.Notification, url string) onceflow.Notification {
	n.Deliveries[0].Fallback = []onceflow.Delivery{{Channel: onceflow.Webhook, To: url + "/fallback"}}
	return n
}

// TestPossibleSendStaysKnownWhenTheDedupStoreIsGone: once an attempt may
// have sent, later attempts that cannot reach Redis do not turn the delivery
// into "failed, nothing sent", and its fallback is not tried.
func TestPossibleSendStaysKnownWhenTheDedupStoreIsGone(t *testing.T) {
	cases := []struct {
		name       string
		rcv        []testenv.ReceiverOption
		hangCommit bool
		policy     workflows.Policy
		history    string
	}{
		// The receiver applies the request but answers after the send's
		// deadline: the attempt reports a possible send.
		{name: "attempt reported a possible send", rcv: []testenv.ReceiverOption{testenv.Slow(1, 5*time.Second)},
			policy: fastPolicy, history: "dedup_outage_after_possible_send"},
		// The first attempt sends and its worker dies before the commit: it
		// reports nothing.
		{name: "attempt died after its send", hangCommit: true, policy: fastPolicy, history: "dedup_outage_after_attempt_died"},
		// As above, and the delivery gives up while that attempt is still
		// out: the last thing Temporal knows is a timeout.
		{name: "last attempt timed out", hangCommit: true, history: "gave_up_on_timed_out_attempt",
			policy: workflows.Policy{AttemptTimeout: 2 * time.Second, FirstRetry: 100 * time.Millisecond, GiveUpAfter: 2 * time.Second}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rcv := testenv.NewReceiver(t, c.rcv...)
			fallback := testenv.NewReceiver(t)
			n := withFallback(webhookTo(t, rcv.URL), fallback.URL)
			id := n.Deliveries[0].ID(n.Key)
			tc, queue := startWorker(t, c.policy, func(s activities.Store) activities.Store {
				return &failAfterFirstClaim{Store: s, deliveryID: id, hangCommit: c.hangCommit}
			})
			run := start(t, tc, queue, n)
			d := finished(t, run)

			assert.Equal(t, onceflow.Ambiguous, d.Status, d.Reason)
			assert.Contains(t, d.Reason, "may have")
			assert.NotContains(t, d.Reason, "nothing was sent")
			assert.Empty(t, d.Fallbacks, "no second message over the fallback")
			assert.Empty(t, fallback.Headers())
			assert.Equal(t, 1, rcv.Raw(id), "sent once, by the first attempt")
			testenv.RecordHistory(t, tc, run.GetID(), run.GetRunID(), c.history)
		})
	}
}

// appliedThen500 is a receiver that applies the first request for each
// Idempotency-Key and then answers 500, and answers every repeat 200 with
// "Idempotent-Replayed: true".
func appliedThen500(t *testing.T) (url string, applied func() int) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		mu.Lock()
		seen[key]++
		first := seen[key] == 1
		mu.Unlock()
		if first {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }
}

// TestReceiverReplayIsReported: a receiver that applied an attempt it
// answered with a 500 says so on the retry; the delivery is delivered with
// that in its reason, and a later run of the key is suppressed saying so.
func TestReceiverReplayIsReported(t *testing.T) {
	tc, queue := startWorker(t, fastPolicy, nil)
	url, applied := appliedThen500(t)
	n := webhookTo(t, url)
	run := start(t, tc, queue, n)
	d := finished(t, run)

	assert.Equal(t, onceflow.Delivered, d.Status)
	assert.EqualValues(t, 2, d.Attempts)
	assert.Contains(t, d.Reason, "already applied an earlier attempt")
	assert.Equal(t, 1, applied())
	testenv.RecordHistory(t, tc, run.GetID(), run.GetRunID(), "receiver_replayed_earlier_attempt")

	again := finished(t, start(t, tc, queue, n))
	assert.Equal(t, onceflow.Suppressed, again.Status)
	assert.Contains(t, again.Reason, "confirmed that it applied it once")
}
