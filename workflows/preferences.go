package workflows

import (
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/metrics"
	"github.com/onceflow/onceflow/preferences"
)

// preferencesOnce is the change that checks a notification's subscriber
// preferences (see docs/workflow-changes.md). Only a notification with a
// subscriber and a category reaches it, so the histories of all others
// carry no marker and replay as before.
const preferencesOnce = "preferences-once"

// checkPreferences decides, once, at send time (after send_at), which
// channels the subscriber opted out of for the notification's category:
// the CheckPreferences activity's answer is recorded in the history, so a
// replay takes the same decision whatever the preferences have become.
// A notification without a subscriber and a category is not checked.
func (r *notification) checkPreferences(ctx workflow.Context) error {
	if r.n.Subscriber == "" || r.n.Category == "" {
		return nil
	}
	if workflow.GetVersion(ctx, preferencesOnce, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	var channels []onceflow.Channel
	seen := map[onceflow.Channel]bool{}
	for _, d := range r.n.Deliveries {
		for _, step := range append([]onceflow.Delivery{d}, d.Fallback...) {
			if !seen[step.Channel] {
				seen[step.Channel] = true
				channels = append(channels, step.Channel)
			}
		}
	}
	var prefs *preferences.Activities
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:                "check the preferences of the subscriber for category " + r.n.Category,
		StartToCloseTimeout:    r.policy.AttemptTimeout,
		ScheduleToCloseTimeout: r.policy.GiveUpAfter,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    r.policy.FirstRetry,
			BackoffCoefficient: 2,
			MaximumInterval:    r.policy.MaxRetryInterval,
		},
	})
	var out preferences.Decision
	err := workflow.ExecuteActivity(actx, prefs.CheckPreferences, preferences.CheckInput{
		Tenant: r.n.Tenant, Subscriber: r.n.Subscriber, Category: r.n.Category, Channels: channels,
	}).Get(ctx, &out)
	r.skip = out.Skip
	return err
}

// skipped settles dr as skipped when its channel is one the subscriber
// opted out of, and reports whether it did. A skipped step is not sent (no
// claim, no provider call). A skipped delivery does not fall back: the
// subscriber's choice is not a failure. A skipped fallback was not tried,
// so the route goes on to the next fallback (onceflow.DeliveryResult's
// LastStep passes over it).
func (r *notification) skipped(ctx workflow.Context, dr *onceflow.DeliveryResult) bool {
	reason, ok := r.skip[dr.Channel]
	if !ok {
		return false
	}
	dr.Status, dr.Reason = onceflow.Skipped, reason
	metrics.Delivery(workflow.GetMetricsHandler(ctx), dr.Channel, dr.Status)
	return true
}
