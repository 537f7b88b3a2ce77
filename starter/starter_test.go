package starter_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/activities"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/internal/redisproc"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/internal/teststack"
	"github.com/onceflow/onceflow/starter"
	"github.com/onceflow/onceflow/workflows"
)

var servers teststack.Servers

func TestMain(m *testing.M) { teststack.Main(m, &servers) }

// newStack is a webhook-only worker on its own task queue, its dedup store
// wrapped by wrap when wrap is not nil.
func newStack(t *testing.T, wrap func(activities.Store) activities.Store) *teststack.Stack {
	t.Helper()
	return servers.New(t, servers.WorkerConfig(), wrap)
}

func webhookTo(t *testing.T, url string) onceflow.Notification {
	return onceflow.Notification{
		Key:        strings.ReplaceAll(t.Name(), "/", "-"),
		Subject:    "Order shipped",
		Body:       "Your order is on its way.",
		Deliveries: []onceflow.Delivery{{Channel: onceflow.Webhook, To: url + "/hooks"}},
	}
}

func ctxFor(t *testing.T) context.Context { return teststack.Context(t) }

func sendAndWait(t *testing.T, s *teststack.Stack, n onceflow.Notification) (starter.Started, onceflow.DeliveryResult) {
	t.Helper()
	return s.SendAndWait(t, n)
}

func TestTwentyConcurrentStartsDeliverOnce(t *testing.T) {
	s := newStack(t, nil)
	rcv := testenv.NewReceiver(t)
	n := webhookTo(t, rcv.URL)
	ctx := ctxFor(t)

	var wg sync.WaitGroup
	runs := make([]starter.Started, 20)
	errs := make([]error, 20)
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i], errs[i] = s.Client.Send(ctx, n)
		}()
	}
	wg.Wait()
	for i := range runs {
		require.NoError(t, errs[i])
		assert.Equal(t, runs[0], runs[i], "every start joins the same run")
	}
	res, err := s.Client.Wait(ctx, n.Key)
	require.NoError(t, err)
	assert.Equal(t, onceflow.Delivered, res.Deliveries[0].Status)
	id := n.Deliveries[0].ID(n.Key)
	assert.Equal(t, 1, rcv.Raw(id), "one request reached the receiver")
	assert.Equal(t, 1, rcv.Applied(id))
}

func TestServerErrorsAreRetriedWithTheSameWebhookID(t *testing.T) {
	s := newStack(t, nil)
	rcv := testenv.NewReceiver(t, testenv.Statuses(500, 500))
	n := webhookTo(t, rcv.URL)
	started, d := sendAndWait(t, s, n)

	// A 500 may come from a receiver that applied the request and then
	// failed; Onceflow cannot tell, so the re-send that succeeded is
	// reported, not silently delivered.
	assert.Equal(t, onceflow.Ambiguous, d.Status, d.Reason)
	assert.Contains(t, d.Reason, "re-sent with the same idempotency key")
	assert.EqualValues(t, 3, d.Attempts)
	assert.Equal(t, "HTTP 200", d.Receipt)
	id := n.Deliveries[0].ID(n.Key)
	assert.Equal(t, 3, rcv.Raw(id), "two 500s, then one 200")
	assert.Equal(t, 1, rcv.Applied(id), "exactly one 2xx-acknowledged delivery")
	require.Len(t, rcv.Headers(), 3)
	for _, h := range rcv.Headers() {
		assert.Equal(t, id, h.Get("webhook-id"))
		assert.Equal(t, id, h.Get("Idempotency-Key"))
	}
	testenv.RecordHistory(t, s.TC, started.WorkflowID, started.RunID, "retried_after_500")
}

// A receiver that applied a request, answered 500, and confirms the re-send
// as a repeat (Idempotent-Replayed) got it once: delivered, and the reason
// says so.
func TestServerErrorAfterApplyingIsConfirmedByTheReceiver(t *testing.T) {
	s := newStack(t, nil)
	rcv := testenv.NewReceiver(t, testenv.Dedup(), testenv.ApplyThen(500))
	n := webhookTo(t, rcv.URL)
	_, d := sendAndWait(t, s, n)

	assert.Equal(t, onceflow.Delivered, d.Status, d.Reason)
	assert.Contains(t, d.Reason, "confirmed")
	id := n.Deliveries[0].ID(n.Key)
	assert.Equal(t, 2, rcv.Raw(id))
	assert.Equal(t, 1, rcv.Applied(id))
}

func TestClientErrorFailsWithoutRetry(t *testing.T) {
	s := newStack(t, nil)
	rcv := testenv.NewReceiver(t, testenv.Statuses(400))
	n := webhookTo(t, rcv.URL)
	started, d := sendAndWait(t, s, n)

	assert.Equal(t, onceflow.Failed, d.Status)
	assert.Contains(t, d.Reason, "HTTP 400")
	assert.Equal(t, 1, rcv.Raw(n.Deliveries[0].ID(n.Key)), "a 4xx is not retried")
	testenv.RecordHistory(t, s.TC, started.WorkflowID, started.RunID, "rejected_400")
}

func TestRetryAfterIsHonoured(t *testing.T) {
	s := newStack(t, nil)
	var mu sync.Mutex
	var at []time.Time
	rcv := testenv.NewReceiver(t, testenv.Answer(func(_ string, n int) int {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		if n == 1 {
			return http.StatusTooManyRequests
		}
		return http.StatusOK
	}), testenv.RetryAfter("2"))
	// The receiver asks for 2s; a plain retry would come after
	// teststack.Policy.FirstRetry (100ms).
	n := webhookTo(t, rcv.URL)
	_, d := sendAndWait(t, s, n)

	assert.Equal(t, onceflow.Delivered, d.Status)
	require.Len(t, at, 2)
	assert.GreaterOrEqual(t, at[1].Sub(at[0]), 1900*time.Millisecond)
}

// crashAfterSend makes the first attempt die between the send and the
// commit: its commit never reaches Redis, as when the worker is killed.
type crashAfterSend struct {
	activities.Store
	once sync.Once
}

func (c *crashAfterSend) Commit(ctx context.Context, rec dedup.Record, token, receipt string, outcome dedup.Outcome) error {
	crashed := false
	c.once.Do(func() { crashed = true })
	if crashed {
		<-ctx.Done() // hang until the attempt's deadline, then vanish
		return errors.New("worker died")
	}
	return c.Store.Commit(ctx, rec, token, receipt, outcome)
}

func TestCrashBetweenSendAndCommit(t *testing.T) {
	t.Run("receiver honours Idempotency-Key", func(t *testing.T) {
		s := newStack(t, func(st activities.Store) activities.Store { return &crashAfterSend{Store: st} })
		rcv := testenv.NewReceiver(t, testenv.Dedup())
		n := webhookTo(t, rcv.URL)
		started, d := sendAndWait(t, s, n)

		id := n.Deliveries[0].ID(n.Key)
		assert.Equal(t, onceflow.Delivered, d.Status, d.Reason)
		assert.Contains(t, d.Reason, "confirmed")
		assert.Equal(t, 2, rcv.Raw(id), "re-sent once after the crash")
		assert.Equal(t, 1, rcv.Applied(id), "no second side effect")
		testenv.RecordHistory(t, s.TC, started.WorkflowID, started.RunID, "crash_resent_confirmed")
	})
	t.Run("receiver ignores Idempotency-Key", func(t *testing.T) {
		s := newStack(t, func(st activities.Store) activities.Store { return &crashAfterSend{Store: st} })
		rcv := testenv.NewReceiver(t)
		n := webhookTo(t, rcv.URL)
		started, d := sendAndWait(t, s, n)

		id := n.Deliveries[0].ID(n.Key)
		assert.Equal(t, onceflow.Ambiguous, d.Status, "a possible duplicate is reported, not hidden")
		assert.Contains(t, d.Reason, "earlier attempt may have sent it")
		assert.Equal(t, 2, rcv.Raw(id))
		testenv.RecordHistory(t, s.TC, started.WorkflowID, started.RunID, "crash_ambiguous")
	})
}

func TestTimeoutAfterTheReceiverActedIsResentWithTheSameKey(t *testing.T) {
	s := newStack(t, nil)
	// The receiver applies the first request but answers after the
	// attempt's deadline (teststack.Policy.AttemptTimeout is 2s).
	rcv := testenv.NewReceiver(t, testenv.Dedup(), testenv.Slow(1, 5*time.Second))
	n := webhookTo(t, rcv.URL)
	_, d := sendAndWait(t, s, n)

	id := n.Deliveries[0].ID(n.Key)
	assert.Equal(t, onceflow.Delivered, d.Status, d.Reason)
	assert.Contains(t, d.Reason, "confirmed", "the receiver recognised the repeat")
	assert.EqualValues(t, 2, d.Attempts)
	assert.Equal(t, 2, rcv.Raw(id))
	assert.Equal(t, 1, rcv.Applied(id))
}

func TestSendingACompletedNotificationAgainReturnsItsResult(t *testing.T) {
	s := newStack(t, nil)
	rcv := testenv.NewReceiver(t)
	n := webhookTo(t, rcv.URL)
	first, d1 := sendAndWait(t, s, n)
	second, d2 := sendAndWait(t, s, n)

	assert.Equal(t, first, second, "the second send joins the completed run")
	assert.Equal(t, d1, d2)
	assert.Equal(t, 1, rcv.Raw(n.Deliveries[0].ID(n.Key)))
}

func TestReusedKeyWithAnotherPayloadIsAConflict(t *testing.T) {
	s := newStack(t, nil)
	rcv := testenv.NewReceiver(t)
	n := webhookTo(t, rcv.URL)
	first, _ := sendAndWait(t, s, n)

	other := n
	other.Body = "Your order was cancelled."
	_, err := s.Client.Send(ctxFor(t), other)
	var conflict *onceflow.ConflictError
	require.ErrorAs(t, err, &conflict)
	assert.Equal(t, n.Key, conflict.Key)

	st, err := s.Client.Status(ctxFor(t), n.Key)
	require.NoError(t, err)
	assert.Equal(t, first.RunID, st.RunID, "nothing new was started")
	assert.Equal(t, 1, rcv.Raw(n.Deliveries[0].ID(n.Key)))
}

func TestNewRunOfADeliveredKeyIsSuppressed(t *testing.T) {
	s := newStack(t, nil)
	rcv := testenv.NewReceiver(t)
	n := webhookTo(t, rcv.URL)
	first, _ := sendAndWait(t, s, n)

	run := s.StartNewRun(t, n)
	var res onceflow.Result
	require.NoError(t, run.Get(ctxFor(t), &res))
	d := res.Deliveries[0]
	assert.NotEqual(t, first.RunID, run.GetRunID())
	assert.Equal(t, onceflow.Suppressed, d.Status)
	assert.Equal(t, "HTTP 200", d.Receipt, "the receipt of the first delivery")
	assert.Equal(t, 1, rcv.Raw(n.Deliveries[0].ID(n.Key)))
	testenv.RecordHistory(t, s.TC, run.GetID(), run.GetRunID(), "suppressed_duplicate")
}

// withLedger is a client of s that checks keys in the shared Redis's dedup
// ledger, as `onceflow api` does when REDIS_URL is set.
func withLedger(t *testing.T, s *teststack.Stack) *starter.Client {
	return starter.New(s.TC, s.Queue, starter.WithLedger(dedup.New(servers.Redis.Client(t), time.Hour)))
}

// deliverThenForget delivers n and then deletes its workflow, as Temporal
// does once the namespace's retention has passed; its dedup records live on.
func deliverThenForget(t *testing.T, s *teststack.Stack, c *starter.Client, n onceflow.Notification) {
	t.Helper()
	ctx := ctxFor(t)
	_, err := c.Send(ctx, n)
	require.NoError(t, err)
	res, err := c.Wait(ctx, n.Key)
	require.NoError(t, err)
	require.Equal(t, onceflow.Delivered, res.Deliveries[0].Status, res.Deliveries[0].Reason)
	teststack.DeleteWorkflow(t, s.TC, servers.Temporal.GetDefaultNamespace(), workflows.ID(n.Key))
}

// changed is n with another body and one more recipient.
func changed(n onceflow.Notification, url string) onceflow.Notification {
	other := n
	other.Body = "Your order was cancelled."
	other.Deliveries = append(slices.Clone(n.Deliveries), onceflow.Delivery{Channel: onceflow.Webhook, To: url + "/new"})
	return other
}

func TestKeyReusedAfterItsWorkflowWasDeletedIsAConflict(t *testing.T) {
	s := newStack(t, nil)
	c := withLedger(t, s)
	rcv := testenv.NewReceiver(t)
	n := webhookTo(t, rcv.URL)
	deliverThenForget(t, s, c, n)

	other := changed(n, rcv.URL)
	_, err := c.Send(ctxFor(t), other)
	var conflict *onceflow.ConflictError
	require.ErrorAs(t, err, &conflict)
	assert.Equal(t, n.Key, conflict.Key)

	_, err = c.Status(ctxFor(t), n.Key)
	var nf *onceflow.NotFoundError
	assert.ErrorAs(t, err, &nf, "nothing was started")
	assert.Equal(t, 1, rcv.Raw(n.Deliveries[0].ID(n.Key)), "only the first notification's delivery")
	assert.Len(t, rcv.Headers(), 1, "nothing else was sent")
}

func TestKeyReusedAfterDeletionFailsItsDeliveriesWithoutALedger(t *testing.T) {
	s := newStack(t, nil)
	rcv := testenv.NewReceiver(t)
	n := webhookTo(t, rcv.URL)
	deliverThenForget(t, s, s.Client, n)

	// Without Redis the client cannot tell; the workers' claims can.
	other := changed(n, rcv.URL)
	ctx := ctxFor(t)
	_, err := s.Client.Send(ctx, other)
	require.NoError(t, err)
	res, err := s.Client.Wait(ctx, other.Key)
	require.NoError(t, err)
	require.Len(t, res.Deliveries, 2)
	for _, d := range res.Deliveries {
		assert.Equal(t, onceflow.Failed, d.Status, "%s: never suppressed, never sent", d.To)
		assert.Contains(t, d.Reason, "different payload", d.To)
		assert.EqualValues(t, 1, d.Attempts, "a conflict is not retried")
	}
	assert.Equal(t, 1, rcv.Raw(n.Deliveries[0].ID(n.Key)), "only the first notification's delivery")
	assert.Len(t, rcv.Headers(), 1, "nothing else was sent")
}

func TestSamePayloadAfterDeletionIsSuppressed(t *testing.T) {
	s := newStack(t, nil)
	c := withLedger(t, s)
	rcv := testenv.NewReceiver(t)
	n := webhookTo(t, rcv.URL)
	deliverThenForget(t, s, c, n)

	ctx := ctxFor(t)
	_, err := c.Send(ctx, n)
	require.NoError(t, err, "the same payload is no conflict")
	res, err := c.Wait(ctx, n.Key)
	require.NoError(t, err)
	assert.Equal(t, onceflow.Suppressed, res.Deliveries[0].Status, res.Deliveries[0].Reason)
	assert.Equal(t, "HTTP 200", res.Deliveries[0].Receipt, "the receipt of the first delivery")
	assert.Equal(t, 1, rcv.Raw(n.Deliveries[0].ID(n.Key)))
}

func TestClaimsRecordTheFingerprintOfTheStart(t *testing.T) {
	s := newStack(t, nil)
	ledger := dedup.New(servers.Redis.Client(t), time.Hour)
	rcv := testenv.NewReceiver(t)
	ctx := ctxFor(t)
	n := webhookTo(t, rcv.URL)
	_, d := sendAndWait(t, s, n)
	require.Equal(t, onceflow.Delivered, d.Status, d.Reason)
	fp, err := ledger.Fingerprint(ctx, n.Key)
	require.NoError(t, err)
	assert.Equal(t, n.Fingerprint(), fp, "what a later start is compared with")
}

func TestUnreachableLedgerDoesNotStopTheStart(t *testing.T) {
	s := newStack(t, nil)
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = down.Close() })
	var logged testenv.Buffer
	c := starter.New(s.TC, s.Queue, starter.WithLedger(dedup.New(down, time.Hour)),
		starter.WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
	rcv := testenv.NewReceiver(t)
	n := webhookTo(t, rcv.URL)

	_, d := sendAndWait(t, &teststack.Stack{TC: s.TC, Queue: s.Queue, Client: c}, n)
	assert.Equal(t, onceflow.Delivered, d.Status, "the workers' claims check the key instead")
	assert.Contains(t, logged.String(), "Could not read the dedup ledger")
}

func TestCancelBeforeSendAtSendsNothing(t *testing.T) {
	s := newStack(t, nil)
	rcv := testenv.NewReceiver(t)
	n := webhookTo(t, rcv.URL)
	at := time.Now().Add(time.Hour)
	n.SendAt = &at
	ctx := ctxFor(t)
	started, err := s.Client.Send(ctx, n)
	require.NoError(t, err)

	st, err := s.Client.Status(ctx, n.Key)
	require.NoError(t, err)
	assert.Equal(t, "running", st.Execution)
	assert.Equal(t, onceflow.Pending, st.Result.Deliveries[0].Status)

	require.NoError(t, s.Client.Cancel(ctx, n.Key))
	_, err = s.Client.Wait(ctx, n.Key)
	require.Error(t, err)
	st, err = s.Client.Status(ctx, n.Key)
	require.NoError(t, err)
	assert.Equal(t, "cancelled", st.Execution)
	assert.Equal(t, onceflow.Cancelled, st.Result.Deliveries[0].Status)
	assert.Zero(t, rcv.Raw(n.Deliveries[0].ID(n.Key)))
	testenv.RecordHistory(t, s.TC, started.WorkflowID, started.RunID, "cancelled_before_send_at")
}

func TestStatusShowsRetryingWithTheLastError(t *testing.T) {
	s := newStack(t, nil)
	release := make(chan struct{})
	rcv := testenv.NewReceiver(t, testenv.Answer(func(string, int) int {
		select {
		case <-release:
			return http.StatusOK
		default:
			return http.StatusServiceUnavailable
		}
	}))
	n := webhookTo(t, rcv.URL)
	ctx := ctxFor(t)
	_, err := s.Client.Send(ctx, n)
	require.NoError(t, err)

	var st starter.Status
	require.Eventually(t, func() bool {
		st, err = s.Client.Status(ctx, n.Key)
		return err == nil && st.Result.Deliveries[0].Status == onceflow.Retrying
	}, 30*time.Second, 50*time.Millisecond)
	assert.Contains(t, st.Result.Deliveries[0].Reason, "HTTP 503")

	close(release)
	res, err := s.Client.Wait(ctx, n.Key)
	require.NoError(t, err)
	assert.Equal(t, onceflow.Delivered, res.Deliveries[0].Status)
}

func TestRedisRestartCostsRetriesNotDeliveries(t *testing.T) {
	for _, c := range []struct {
		name string
		down func(*testenv.Redis)
	}{
		{"SIGTERM", func(r *testenv.Redis) { r.Stop() }},
		// SIGKILL flushes nothing: the first notification's record survives
		// because the append-only file already had it, which appendfsync
		// everysec guarantees for a write acknowledged KillSafeAfter before.
		{"SIGKILL", func(r *testenv.Redis) { time.Sleep(redisproc.KillSafeAfter); r.Kill() }},
	} {
		t.Run(c.name, func(t *testing.T) { redisOutage(t, c.down) })
	}
}

// redisOutage delivers a notification, takes Redis down with down, sends a
// second one, and brings Redis back once an attempt has failed on the
// outage.
func redisOutage(t *testing.T, down func(*testenv.Redis)) {
	own, err := testenv.StartRedis(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(own.Stop)
	rcv := testenv.NewReceiver(t)
	cfg := servers.WorkerConfig()
	cfg.RedisURL = "redis://" + own.Addr + "/0"
	st := servers.New(t, cfg, nil)
	c := st.Client
	ctx := ctxFor(t)

	first := webhookTo(t, rcv.URL)
	first.Key += "-before"
	_, err = c.Send(ctx, first)
	require.NoError(t, err)
	res, err := c.Wait(ctx, first.Key)
	require.NoError(t, err)
	require.Len(t, res.Deliveries, 1)
	require.Equal(t, onceflow.Delivered, res.Deliveries[0].Status, res.Deliveries[0].Reason)

	// Redis goes down: a notification sent now waits, retrying, and is
	// delivered once Redis is back, from its append-only file.
	down(own)
	second := webhookTo(t, rcv.URL)
	second.Key += "-during"
	started, err := c.Send(ctx, second)
	require.NoError(t, err)
	var lastFailure string
	require.Eventually(t, func() bool {
		desc, err := st.TC.DescribeWorkflowExecution(ctx, started.WorkflowID, started.RunID)
		if err != nil {
			return false
		}
		for _, a := range desc.GetPendingActivities() {
			f := a.GetLastFailure()
			if f.GetApplicationFailureInfo().GetType() == activities.TypeDedupUnavailable {
				lastFailure = f.GetMessage()
				return true
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "no attempt failed on the Redis outage")
	t.Logf("an attempt met the outage: %s", lastFailure)
	assert.Zero(t, rcv.Raw(second.Deliveries[0].ID(second.Key)), "nothing is sent while the dedup store is down")
	require.NoError(t, own.Restart())

	res, err = c.Wait(ctx, second.Key)
	require.NoError(t, err)
	require.Len(t, res.Deliveries, 1)
	d := res.Deliveries[0]
	assert.Equal(t, onceflow.Delivered, d.Status, d.Reason)
	assert.Greater(t, d.Attempts, int32(1), "the outage cost at least one attempt")
	assert.Equal(t, 1, rcv.Raw(second.Deliveries[0].ID(second.Key)))

	// The first notification's record survived the restart.
	run := st.StartNewRun(t, first)
	var again onceflow.Result
	require.NoError(t, run.Get(ctx, &again))
	require.Len(t, again.Deliveries, 1)
	assert.Equal(t, onceflow.Suppressed, again.Deliveries[0].Status)
	assert.Equal(t, 1, rcv.Raw(first.Deliveries[0].ID(first.Key)))
}

func TestInvalidNotificationStartsNothing(t *testing.T) {
	s := newStack(t, nil)
	n := webhookTo(t, "ftp://example.com")
	_, err := s.Client.Send(ctxFor(t), n)
	var ve *onceflow.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "deliveries[0].to", ve.Field)
	_, err = s.Client.Status(ctxFor(t), n.Key)
	var nf *onceflow.NotFoundError
	assert.ErrorAs(t, err, &nf)
}

func TestVisibilityFindsNotificationsByStatus(t *testing.T) {
	s := newStack(t, nil)
	ok := testenv.NewReceiver(t)
	bad := testenv.NewReceiver(t, testenv.Statuses(400))
	delivered := webhookTo(t, ok.URL)
	delivered.Key += "-ok"
	failed := webhookTo(t, bad.URL)
	failed.Key += "-bad"
	okRun, _ := sendAndWait(t, s, delivered)
	badRun, _ := sendAndWait(t, s, failed)

	find := func(query string) []string {
		resp, err := s.TC.ListWorkflow(ctxFor(t), &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: servers.Temporal.GetDefaultNamespace(), Query: query,
		})
		require.NoError(t, err)
		var ids []string
		for _, e := range resp.GetExecutions() {
			ids = append(ids, e.GetExecution().GetWorkflowId())
		}
		return ids
	}
	prefix := strings.ReplaceAll(t.Name(), "/", "-")
	assert.Eventually(t, func() bool {
		return slices.Equal(find(`OnceflowStatus="delivered" AND OnceflowKey STARTS_WITH "`+prefix+`"`), []string{okRun.WorkflowID}) &&
			slices.Equal(find(`OnceflowStatus="failed" AND OnceflowKey STARTS_WITH "`+prefix+`"`), []string{badRun.WorkflowID}) &&
			len(find(`OnceflowChannels="webhook" AND OnceflowKey STARTS_WITH "`+prefix+`"`)) == 2
	}, 20*time.Second, 100*time.Millisecond)

	desc, err := s.TC.DescribeWorkflowExecution(ctxFor(t), okRun.WorkflowID, okRun.RunID)
	require.NoError(t, err)
	summary := desc.GetExecutionConfig().GetUserMetadata().GetSummary()
	require.NotNil(t, summary, "the workflow carries a static summary")
	assert.Contains(t, string(summary.GetData()), "1 delivery over webhook")
	assert.NotContains(t, string(summary.GetData()), ok.URL, "no recipient in the summary")
}
