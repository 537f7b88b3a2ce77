package activities_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/activities"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/providers"
	"github.com/onceflow/onceflow/providers/egress"
	"github.com/onceflow/onceflow/providers/webhook"
)

var redisServer *testenv.Redis

func TestMain(m *testing.M) { testenv.RunWithRedis(m, &redisServer) }

func setup(t *testing.T, policy activities.AmbiguityPolicy) (*activities.Activities, *dedup.Store) {
	store := dedup.New(redisServer.Client(t), time.Hour)
	hook, err := webhook.New(testenv.WebhookSecret, egress.Guard{Allow: egress.Loopback()})
	require.NoError(t, err)
	return &activities.Activities{
		// Leases in these tests are expired by hand, long past any send.
		LookupSettle: time.Millisecond,
		Store:        store,
		Providers:    map[onceflow.Channel]providers.Provider{onceflow.Webhook: hook},
		Ambiguity:    map[onceflow.Channel]activities.AmbiguityPolicy{onceflow.Webhook: policy},
	}, store
}

func input(t *testing.T, url string) activities.DeliverInput {
	d := onceflow.Delivery{Channel: onceflow.Webhook, To: url}
	return activities.DeliverInput{Key: t.Name(), DeliveryID: d.ID(t.Name()), Delivery: d, Body: "hello", Timestamp: time.Now()}
}

func deliver(t *testing.T, acts *activities.Activities, in activities.DeliverInput) (activities.DeliverOutput, error) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	env.SetTestTimeout(30 * time.Second)
	v, err := env.ExecuteActivity(acts.Deliver, in)
	var out activities.DeliverOutput
	if err == nil {
		require.NoError(t, v.Get(&out))
	}
	return out, err
}

func appError(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "want an application error, got %v", err)
	return appErr
}

// expireLease leaves the record as an attempt that died mid-send leaves it.
func expireLease(t *testing.T, store *dedup.Store, in activities.DeliverInput) {
	rec := dedup.Record{Key: in.Key, DeliveryID: in.DeliveryID}
	_, err := store.Claim(context.Background(), rec, "dead-attempt", 5*time.Millisecond)
	require.NoError(t, err)
	time.Sleep(10 * time.Millisecond)
}

func TestHoldPolicyReportsAmbiguityWithoutSending(t *testing.T) {
	acts, store := setup(t, activities.Hold)
	rcv := testenv.NewReceiver(t)
	in := input(t, rcv.URL)
	expireLease(t, store, in)

	out, err := deliver(t, acts, in)
	require.NoError(t, err)
	assert.Equal(t, onceflow.Ambiguous, out.Status)
	assert.Contains(t, out.Reason, "held")
	assert.Empty(t, rcv.Headers(), "held: nothing sent")
}

func TestLiveLeaseIsRetriedWhenItEnds(t *testing.T) {
	acts, store := setup(t, activities.Resend)
	rcv := testenv.NewReceiver(t)
	in := input(t, rcv.URL)
	_, err := store.Claim(context.Background(), dedup.Record{Key: in.Key, DeliveryID: in.DeliveryID}, "other-attempt", time.Minute)
	require.NoError(t, err)

	_, err = deliver(t, acts, in)
	appErr := appError(t, err)
	assert.Equal(t, activities.TypeBusy, appErr.Type())
	assert.False(t, appErr.NonRetryable())
	assert.InDelta(t, time.Minute.Seconds(), appErr.NextRetryDelay().Seconds(), 2)
	assert.Empty(t, rcv.Headers())
}

func TestChannelWithoutProviderFailsPermanently(t *testing.T) {
	acts, _ := setup(t, activities.Resend)
	in := input(t, "https://x.example")
	in.Delivery = onceflow.Delivery{Channel: onceflow.SMS, To: "+447700900123"}
	_, err := deliver(t, acts, in)
	appErr := appError(t, err)
	assert.Equal(t, activities.TypeNoProvider, appErr.Type())
	assert.True(t, appErr.NonRetryable())
	assert.Contains(t, appErr.Error(), "sms")
}

func TestRefusedConnectionReleasesWithoutAmbiguity(t *testing.T) {
	acts, store := setup(t, activities.Resend)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + l.Addr().String()
	require.NoError(t, l.Close())
	in := input(t, url)

	_, err = deliver(t, acts, in)
	appErr := appError(t, err)
	assert.Equal(t, activities.TypeRetryable, appErr.Type())

	c, err := store.Claim(context.Background(), dedup.Record{Key: in.Key, DeliveryID: in.DeliveryID}, "next", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, dedup.Granted, c.State, "the lease was released: no wait for the next attempt")
	assert.False(t, c.Ambiguous, "nothing can have been sent")
}

func TestDedupOutageSendsNothing(t *testing.T) {
	acts, _ := setup(t, activities.Resend)
	down, err := testenv.StartRedis(t.TempDir())
	require.NoError(t, err)
	rdb := down.Client(t)
	down.Stop()
	acts.Store = dedup.New(rdb, time.Hour)
	rcv := testenv.NewReceiver(t)

	_, err = deliver(t, acts, input(t, rcv.URL))
	appErr := appError(t, err)
	assert.Equal(t, activities.TypeDedupUnavailable, appErr.Type())
	assert.False(t, appErr.NonRetryable())
	assert.Empty(t, rcv.Headers())
}

func TestSuppressedDeliveryPassesOnWhatTheCommitKnew(t *testing.T) {
	acts, store := setup(t, activities.Resend)
	rcv := testenv.NewReceiver(t)
	for outcome, want := range map[dedup.Outcome]onceflow.Status{
		dedup.Clean: onceflow.Suppressed, dedup.Confirmed: onceflow.Suppressed, dedup.Unconfirmed: onceflow.Ambiguous,
	} {
		in := input(t, rcv.URL+"/"+string(outcome))
		rec := dedup.Record{Key: in.Key, DeliveryID: in.DeliveryID}
		_, err := store.Claim(context.Background(), rec, "earlier", time.Minute)
		require.NoError(t, err)
		require.NoError(t, store.Commit(context.Background(), rec, "earlier", "HTTP 200", outcome))

		out, err := deliver(t, acts, in)
		require.NoError(t, err)
		assert.Equal(t, want, out.Status, "outcome %q", outcome)
		assert.Equal(t, "HTTP 200", out.Receipt)
		if outcome != dedup.Clean {
			assert.Contains(t, out.Reason, "earlier attempt may have sent it")
		}
	}
	assert.Empty(t, rcv.Headers(), "nothing sent again")
}

// refusing is a provider that certainly sends nothing, like a relay that
// refuses the connection.
type refusing struct{}

func (refusing) Send(context.Context, providers.Message) (providers.Receipt, error) {
	return providers.Receipt{}, &providers.Error{Err: errors.New("dial tcp: connection refused")}
}

func TestPossibleSendIsNeverResentThroughAChain(t *testing.T) {
	acts, store := setup(t, activities.Resend)
	rcv := testenv.NewReceiver(t, testenv.Dedup())
	hook := acts.Providers[onceflow.Webhook]
	// The earlier attempt may have sent through either provider; a re-send
	// could reach the other one, which knows nothing of it.
	acts.Providers[onceflow.Webhook] = providers.Chain{{Name: "first", Provider: refusing{}}, {Name: "second", Provider: hook}}
	in := input(t, rcv.URL)
	expireLease(t, store, in)

	out, err := deliver(t, acts, in)
	require.NoError(t, err)
	assert.Equal(t, onceflow.Ambiguous, out.Status)
	assert.Contains(t, out.Reason, "held")
	assert.Empty(t, rcv.Headers(), "held: nothing sent through the second provider")
}

func TestKeyUsedByAnotherPayloadSendsNothingAndFailsPermanently(t *testing.T) {
	acts, store := setup(t, activities.Resend)
	rcv := testenv.NewReceiver(t)
	// An earlier notification with this key and another payload sent to
	// the same recipient.
	in := input(t, rcv.URL)
	in.Fingerprint = "fp-earlier"
	rec := dedup.Record{Key: in.Key, DeliveryID: in.DeliveryID, Fingerprint: in.Fingerprint}
	_, err := store.Claim(context.Background(), rec, "earlier", time.Minute)
	require.NoError(t, err)
	require.NoError(t, store.Commit(context.Background(), rec, "earlier", "HTTP 200", dedup.Clean))

	in.Fingerprint = "fp-now"
	_, err = deliver(t, acts, in)
	appErr := appError(t, err)
	assert.Equal(t, activities.TypeKeyConflict, appErr.Type())
	assert.True(t, appErr.NonRetryable())
	assert.Contains(t, appErr.Error(), "different payload")
	var details activities.FailureDetails
	require.NoError(t, appErr.Details(&details))
	assert.False(t, details.MaybeSent)

	// An input scheduled before fingerprints were passed on skips the check.
	in.Fingerprint = ""
	out, err := deliver(t, acts, in)
	require.NoError(t, err)
	assert.Equal(t, onceflow.Suppressed, out.Status)
	assert.Empty(t, rcv.Headers(), "nothing sent")
}

// diesAfterCommit is a dedup store whose first commit is applied and then
// lost with its worker: the attempt ends as a SIGKILLed one does, with
// neither a result nor heartbeat details.
type diesAfterCommit struct {
	*dedup.Store
	died atomic.Bool
}

func (s *diesAfterCommit) Commit(ctx context.Context, rec dedup.Record, token, receipt string, outcome dedup.Outcome) error {
	err := s.Store.Commit(ctx, rec, token, receipt, outcome)
	if s.died.CompareAndSwap(false, true) {
		panic("the worker died after the commit")
	}
	return err
}

// deliverWithRetries runs Deliver as a notification's workflow does, with
// retries.
func deliverWithRetries(ctx workflow.Context, in activities.DeliverInput) (activities.DeliverOutput, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Millisecond, MaximumAttempts: 3},
	})
	var out activities.DeliverOutput
	err := workflow.ExecuteActivity(ctx, "Deliver", in).Get(ctx, &out)
	return out, err
}

func TestRecordCommittedByAnEarlierAttemptIsDeliveredAndByAnotherNotificationSuppressed(t *testing.T) {
	acts, store := setup(t, activities.Resend)
	acts.Store = &diesAfterCommit{Store: store}
	rcv := testenv.NewReceiver(t)
	in := input(t, rcv.URL)
	run := func(workflowID string) activities.DeliverOutput {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		env.RegisterWorkflow(deliverWithRetries)
		env.RegisterActivity(acts)
		env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflowID})
		env.ExecuteWorkflow(deliverWithRetries, in)
		require.True(t, env.IsWorkflowCompleted())
		require.NoError(t, env.GetWorkflowError())
		var out activities.DeliverOutput
		require.NoError(t, env.GetWorkflowResult(&out))
		return out
	}

	// Attempt 1 sends and commits, and dies; attempt 2 finds the record
	// its own delivery committed.
	out := run("notification/" + t.Name())
	assert.Equal(t, onceflow.Delivered, out.Status, out.Reason)
	assert.Contains(t, out.Reason, "delivered by an earlier attempt of this delivery")
	assert.Equal(t, int32(2), out.Attempt)
	assert.NotEmpty(t, out.Receipt)
	assert.True(t, acts.Store.(*diesAfterCommit).died.Load(), "attempt 1 committed and died")

	// Another workflow with the same record (another start of the key, a
	// broadcast to the same ledger) repeats a delivery made by another.
	out = run("notification/" + t.Name() + "-again")
	assert.Equal(t, onceflow.Suppressed, out.Status, out.Reason)
	assert.Equal(t, int32(1), out.Attempt)
	assert.Len(t, rcv.Headers(), 1, "sent once")
}
