package workflows_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/activities"
	"github.com/onceflow/onceflow/preferences"
	"github.com/onceflow/onceflow/workflows"
)

// prefs names the CheckPreferences activity for the test environment's
// mocks (newEnv registers it).
var prefs *preferences.Activities

func categorised() onceflow.Notification {
	n := notification()
	n.Subscriber, n.Category = "user-42", "marketing"
	n.Deliveries = []onceflow.Delivery{
		{Channel: onceflow.Email, To: "ada@example.com"},
		{Channel: onceflow.Webhook, To: "https://a.example/hook"},
	}
	return n
}

func TestOptedOutDeliveryIsSkippedWithoutASend(t *testing.T) {
	env, acts := newEnv(t)
	var asked preferences.CheckInput
	env.OnActivity(prefs.CheckPreferences, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in preferences.CheckInput) (preferences.Decision, error) {
			asked = in
			return preferences.Decision{Skip: map[onceflow.Channel]string{onceflow.Email: "opted out of marketing on email"}}, nil
		}).Once()
	var mu sync.Mutex
	var sent []onceflow.Channel
	env.OnActivity(acts.Deliver, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DeliverInput) (activities.DeliverOutput, error) {
			mu.Lock()
			defer mu.Unlock()
			sent = append(sent, in.Delivery.Channel)
			return activities.DeliverOutput{Status: onceflow.Delivered, Attempt: 1}, nil
		})
	env.ExecuteWorkflow(workflows.Name, categorised())

	res := result(t, env)
	assert.Equal(t, preferences.CheckInput{Subscriber: "user-42", Category: "marketing", Channels: []onceflow.Channel{onceflow.Email, onceflow.Webhook}}, asked)
	assert.Equal(t, []onceflow.Channel{onceflow.Webhook}, sent, "the opted-out e-mail was never handed to Deliver")
	assert.Equal(t, onceflow.Skipped, res.Deliveries[0].Status)
	assert.Equal(t, "opted out of marketing on email", res.Deliveries[0].Reason)
	assert.Equal(t, onceflow.Delivered, res.Deliveries[1].Status)
	assert.Equal(t, onceflow.Delivered, res.Status())
}

func TestSkippedDeliveryDoesNotFallBackAndSkippedFallbackIsPassedOver(t *testing.T) {
	env, acts := newEnv(t)
	env.OnActivity(prefs.CheckPreferences, mock.Anything, mock.Anything).Return(
		preferences.Decision{Skip: map[onceflow.Channel]string{onceflow.Email: "no email", onceflow.SMS: "no sms"}}, nil)
	var mu sync.Mutex
	var sent []onceflow.Channel
	env.OnActivity(acts.Deliver, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DeliverInput) (activities.DeliverOutput, error) {
			mu.Lock()
			defer mu.Unlock()
			sent = append(sent, in.Delivery.Channel)
			if in.Delivery.Channel == onceflow.Webhook {
				return activities.DeliverOutput{}, temporal.NewNonRetryableApplicationError("HTTP 400", activities.TypeRejected, nil, activities.FailureDetails{Attempt: 1})
			}
			return activities.DeliverOutput{Status: onceflow.Delivered, Attempt: 1}, nil
		})
	n := categorised()
	n.Deliveries = []onceflow.Delivery{
		// Skipped: its push fallback is not tried.
		{Channel: onceflow.Email, To: "ada@example.com", Fallback: []onceflow.Delivery{{Channel: onceflow.Push, To: "device-1"}}},
		// Fails; its sms fallback is skipped, its push fallback sent.
		{Channel: onceflow.Webhook, To: "https://a.example/hook", Fallback: []onceflow.Delivery{{Channel: onceflow.SMS, To: "+447700900123"}, {Channel: onceflow.Push, To: "device-2"}}},
		// Fails; its only fallback is skipped: it stays failed.
		{Channel: onceflow.Webhook, To: "https://b.example/hook", Fallback: []onceflow.Delivery{{Channel: onceflow.SMS, To: "+447700900124"}}},
	}
	env.ExecuteWorkflow(workflows.Name, n)

	res := result(t, env)
	assert.ElementsMatch(t, []onceflow.Channel{onceflow.Webhook, onceflow.Webhook, onceflow.Push}, sent)
	first := res.Deliveries[0]
	assert.Equal(t, onceflow.Skipped, first.Status)
	assert.Empty(t, first.Fallbacks, "a skipped delivery does not fall back")

	second := res.Deliveries[1]
	assert.Equal(t, onceflow.Failed, second.Status)
	require.Len(t, second.Fallbacks, 2)
	assert.Equal(t, onceflow.Skipped, second.Fallbacks[0].Status)
	assert.Equal(t, "no sms", second.Fallbacks[0].Reason)
	assert.Equal(t, onceflow.Delivered, second.Fallbacks[1].Status)
	assert.Equal(t, onceflow.Delivered, second.LastStep().Status)

	third := res.Deliveries[2]
	require.Len(t, third.Fallbacks, 1)
	assert.Equal(t, onceflow.Skipped, third.Fallbacks[0].Status)
	assert.Equal(t, onceflow.Failed, third.LastStep().Status, "a skipped fallback does not hide the failure")
	assert.Equal(t, onceflow.Failed, res.Status())
}

func TestNotificationWithoutCategoryIsNotChecked(t *testing.T) {
	env, acts := newEnv(t)
	env.OnActivity(prefs.CheckPreferences, mock.Anything, mock.Anything).Return(preferences.Decision{}, nil).Never()
	env.OnActivity(acts.Deliver, mock.Anything, mock.Anything).Return(activities.DeliverOutput{Status: onceflow.Delivered, Attempt: 1}, nil)
	n := categorised()
	n.Category = ""
	env.ExecuteWorkflow(workflows.Name, n)
	res := result(t, env)
	assert.Equal(t, onceflow.Delivered, res.Status())
	env.AssertExpectations(t)
}

func TestEveryDeliverySkippedSumsUpAsSkipped(t *testing.T) {
	env, _ := newEnv(t)
	env.OnActivity(prefs.CheckPreferences, mock.Anything, mock.Anything).Return(
		preferences.Decision{Skip: map[onceflow.Channel]string{onceflow.Email: "no", onceflow.Webhook: "no"}}, nil)
	env.ExecuteWorkflow(workflows.Name, categorised())
	res := result(t, env)
	assert.Equal(t, onceflow.Skipped, res.Status())
}

func TestPreferencesThatCannotBeReadSendNothing(t *testing.T) {
	env, _ := newEnv(t)
	env.OnActivity(prefs.CheckPreferences, mock.Anything, mock.Anything).Return(
		preferences.Decision{}, temporal.NewNonRetryableApplicationError("redis down", preferences.TypeUnavailable, nil))
	env.ExecuteWorkflow(workflows.Name, categorised())
	res := result(t, env)
	for _, d := range res.Deliveries {
		assert.Equal(t, onceflow.Failed, d.Status)
		assert.Contains(t, d.Reason, "not sent: redis down")
	}
}
