package workflows_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/activities"
	"github.com/onceflow/onceflow/preferences"
	"github.com/onceflow/onceflow/workflows"
)

func notification() onceflow.Notification {
	return onceflow.Notification{
		Key:     "order-7-shipped",
		Subject: "Shipped",
		Body:    "On its way",
		Deliveries: []onceflow.Delivery{
			{Channel: onceflow.Webhook, To: "https://a.example/hook"},
			{Channel: onceflow.Webhook, To: "https://b.example/hook"},
		},
	}
}

func newEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *activities.Activities) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	wf := workflows.New(workflows.Policy{AttemptTimeout: 10 * time.Second, FirstRetry: time.Second, GiveUpAfter: time.Hour})
	env.RegisterWorkflowWithOptions(wf.Run, workflow.RegisterOptions{Name: workflows.Name})
	acts := &activities.Activities{}
	env.RegisterActivity(acts)
	env.RegisterActivity(&preferences.Activities{})
	return env, acts
}

func result(t *testing.T, env *testsuite.TestWorkflowEnvironment) onceflow.Result {
	t.Helper()
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res onceflow.Result
	require.NoError(t, env.GetWorkflowResult(&res))
	return res
}

func TestDeliversEveryDeliveryWithItsOwnID(t *testing.T) {
	env, acts := newEnv(t)
	var mu sync.Mutex // the deliveries' activities run concurrently
	var seen []activities.DeliverInput
	env.OnActivity(acts.Deliver, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DeliverInput) (activities.DeliverOutput, error) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, in)
			return activities.DeliverOutput{Status: onceflow.Delivered, Receipt: "HTTP 200", Attempt: 1}, nil
		})
	n := notification()
	env.ExecuteWorkflow(workflows.Name, n)

	res := result(t, env)
	require.Len(t, res.Deliveries, 2)
	for i, d := range res.Deliveries {
		assert.Equal(t, onceflow.Delivered, d.Status)
		assert.Equal(t, "HTTP 200", d.Receipt)
		assert.Equal(t, n.Deliveries[i], d.Delivery)
		assert.Equal(t, n.Deliveries[i].ID(n.Key), d.DeliveryID)
	}
	require.Len(t, seen, 2)
	assert.NotEqual(t, seen[0].DeliveryID, seen[1].DeliveryID)
	assert.Equal(t, "On its way", seen[0].Body)
}

func TestPermanentRejectionFailsWithoutRetry(t *testing.T) {
	env, acts := newEnv(t)
	var calls atomic.Int32
	env.OnActivity(acts.Deliver, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.DeliverInput) (activities.DeliverOutput, error) {
			calls.Add(1)
			return activities.DeliverOutput{}, temporal.NewNonRetryableApplicationError(
				"receiver answered HTTP 400 Bad Request", activities.TypeRejected, nil, activities.FailureDetails{})
		})
	n := notification()
	n.Deliveries = n.Deliveries[:1]
	env.ExecuteWorkflow(workflows.Name, n)

	res := result(t, env)
	assert.Equal(t, onceflow.Failed, res.Deliveries[0].Status)
	assert.Equal(t, "receiver answered HTTP 400 Bad Request", res.Deliveries[0].Reason)
	assert.EqualValues(t, 1, calls.Load())
}

func TestRetryableFailuresAreRetriedWithBackoff(t *testing.T) {
	env, acts := newEnv(t)
	var calls atomic.Int32
	env.OnActivity(acts.Deliver, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.DeliverInput) (activities.DeliverOutput, error) {
			if calls.Add(1) < 3 {
				return activities.DeliverOutput{}, temporal.NewApplicationError("receiver answered HTTP 500", activities.TypeRetryable, activities.FailureDetails{})
			}
			return activities.DeliverOutput{Status: onceflow.Delivered, Receipt: "HTTP 200", Attempt: 3}, nil
		})
	n := notification()
	n.Deliveries = n.Deliveries[:1]
	env.ExecuteWorkflow(workflows.Name, n)

	res := result(t, env)
	assert.Equal(t, onceflow.Delivered, res.Deliveries[0].Status)
	assert.EqualValues(t, 3, res.Deliveries[0].Attempts)
	assert.EqualValues(t, 3, calls.Load())
}

func TestGivingUpAfterAPossibleSendIsAmbiguous(t *testing.T) {
	env, acts := newEnv(t)
	env.OnActivity(acts.Deliver, mock.Anything, mock.Anything).Return(
		activities.DeliverOutput{}, temporal.NewApplicationError("webhook: context deadline exceeded", activities.TypeRetryable, activities.FailureDetails{MaybeSent: true}))
	n := notification()
	n.Deliveries = n.Deliveries[:1]
	env.ExecuteWorkflow(workflows.Name, n)

	res := result(t, env)
	d := res.Deliveries[0]
	assert.Equal(t, onceflow.Ambiguous, d.Status)
	assert.Contains(t, d.Reason, "context deadline exceeded")
}

func TestGivingUpWithoutAPossibleSendFails(t *testing.T) {
	env, acts := newEnv(t)
	env.OnActivity(acts.Deliver, mock.Anything, mock.Anything).Return(
		activities.DeliverOutput{}, temporal.NewApplicationError("receiver answered HTTP 503", activities.TypeRetryable, activities.FailureDetails{}))
	n := notification()
	n.Deliveries = n.Deliveries[:1]
	env.ExecuteWorkflow(workflows.Name, n)

	d := result(t, env).Deliveries[0]
	assert.Equal(t, onceflow.Failed, d.Status)
	assert.Contains(t, d.Reason, "HTTP 503")
}

func TestSendAtWaitsOnADurableTimer(t *testing.T) {
	env, acts := newEnv(t)
	start := env.Now()
	sendAt := start.Add(2 * time.Hour)
	// The deliveries' activities run concurrently.
	var mu sync.Mutex
	var stamps []time.Time
	env.OnActivity(acts.Deliver, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DeliverInput) (activities.DeliverOutput, error) {
			mu.Lock()
			defer mu.Unlock()
			stamps = append(stamps, in.Timestamp)
			return activities.DeliverOutput{Status: onceflow.Delivered, Attempt: 1}, nil
		})
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(workflows.StatusQuery)
		require.NoError(t, err)
		var res onceflow.Result
		require.NoError(t, v.Get(&res))
		assert.Equal(t, onceflow.Pending, res.Deliveries[0].Status)
	}, time.Hour)
	n := notification()
	n.SendAt = &sendAt
	env.ExecuteWorkflow(workflows.Name, n)

	res := result(t, env)
	assert.Equal(t, onceflow.Delivered, res.Deliveries[0].Status)
	require.Len(t, stamps, len(n.Deliveries))
	for _, stamp := range stamps {
		assert.False(t, stamp.Before(sendAt), "sent at %v, before send_at %v", stamp, sendAt)
	}
}

func TestCancelBeforeSendAtSendsNothing(t *testing.T) {
	env, acts := newEnv(t)
	var calls atomic.Int32
	env.OnActivity(acts.Deliver, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.DeliverInput) (activities.DeliverOutput, error) {
			calls.Add(1)
			return activities.DeliverOutput{Status: onceflow.Delivered}, nil
		})
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Hour)
	sendAt := env.Now().Add(2 * time.Hour)
	n := notification()
	n.SendAt = &sendAt
	env.ExecuteWorkflow(workflows.Name, n)

	require.True(t, env.IsWorkflowCompleted())
	assert.True(t, temporal.IsCanceledError(env.GetWorkflowError()), "got %v", env.GetWorkflowError())
	assert.Zero(t, calls.Load())
	v, err := env.QueryWorkflow(workflows.StatusQuery)
	require.NoError(t, err)
	var res onceflow.Result
	require.NoError(t, v.Get(&res))
	for _, d := range res.Deliveries {
		assert.Equal(t, onceflow.Cancelled, d.Status)
	}
}

func TestInvalidNotificationFailsWithoutSending(t *testing.T) {
	env, _ := newEnv(t)
	n := notification()
	n.Deliveries[1].Channel = "pigeon"
	env.ExecuteWorkflow(workflows.Name, n)

	require.True(t, env.IsWorkflowCompleted())
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(env.GetWorkflowError(), &appErr))
	assert.Equal(t, workflows.TypeInvalid, appErr.Type())
	assert.Contains(t, appErr.Error(), "deliveries[1].channel")
}

func TestFallsBackToTheNextChannelAfterAPermanentFailure(t *testing.T) {
	env, acts := newEnv(t)
	var tried []onceflow.Channel
	env.OnActivity(acts.Deliver, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DeliverInput) (activities.DeliverOutput, error) {
			tried = append(tried, in.Delivery.Channel)
			if in.Delivery.Channel == onceflow.SMS {
				return activities.DeliverOutput{}, temporal.NewNonRetryableApplicationError("Twilio error 21211", activities.TypeRejected, nil, activities.FailureDetails{Attempt: 1})
			}
			return activities.DeliverOutput{Status: onceflow.Delivered, Receipt: "Message-ID <x>", Attempt: 1}, nil
		})
	n := notification()
	n.Deliveries = []onceflow.Delivery{{Channel: onceflow.SMS, To: "+447700900123", Fallback: []onceflow.Delivery{{Channel: onceflow.Email, To: "ada@example.com"}}}}
	env.ExecuteWorkflow(workflows.Name, n)

	res := result(t, env)
	d := res.Deliveries[0]
	assert.Equal(t, []onceflow.Channel{onceflow.SMS, onceflow.Email}, tried)
	assert.Equal(t, onceflow.Failed, d.Status, "the SMS step failed")
	require.Len(t, d.Fallbacks, 1)
	assert.Equal(t, onceflow.Delivered, d.Fallbacks[0].Status)
	assert.Equal(t, onceflow.Delivery{Channel: onceflow.Email, To: "ada@example.com"}.ID(n.Key), d.Fallbacks[0].DeliveryID)
	assert.Equal(t, onceflow.Delivered, res.Status(), "the notification was delivered, by its fallback")
}

func TestAmbiguousDeliveryDoesNotFallBack(t *testing.T) {
	env, acts := newEnv(t)
	var calls atomic.Int32
	env.OnActivity(acts.Deliver, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.DeliverInput) (activities.DeliverOutput, error) {
			calls.Add(1)
			return activities.DeliverOutput{Status: onceflow.Ambiguous, Reason: "held", Attempt: 2}, nil
		})
	n := notification()
	n.Deliveries = []onceflow.Delivery{{Channel: onceflow.SMS, To: "+447700900123", Fallback: []onceflow.Delivery{{Channel: onceflow.Email, To: "ada@example.com"}}}}
	env.ExecuteWorkflow(workflows.Name, n)

	d := result(t, env).Deliveries[0]
	assert.Equal(t, onceflow.Ambiguous, d.Status)
	assert.Empty(t, d.Fallbacks, "it may have been sent: no second message on another channel")
	assert.EqualValues(t, 1, calls.Load())
}
