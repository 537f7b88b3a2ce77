package activities

import (
	"context"
	"errors"
	"math"
	"slices"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/events"
)

// Events records operational events (events.Outbox). The Deliver activity
// reports to it after its outcome is decided; a failure to record is
// logged and changes nothing about the delivery.
type Events interface {
	// Delivery records a delivery's final failed or ambiguous outcome.
	Delivery(ctx context.Context, d events.Delivery) error
	// EndpointFailed records a failed request to a destination URL;
	// EndpointOK one it accepted.
	EndpointFailed(ctx context.Context, channel, url string) error
	EndpointOK(ctx context.Context, url string) error
}

// report tells a.Events what this attempt of Deliver ended with: a final
// failed or ambiguous outcome, and for webhooks whether the destination
// answered. The workflow is not asked: a final outcome is known here, from
// the retry policy that Temporal hands every attempt, so that the
// workflow's commands, and so its recorded histories, stay as they were.
func (a *Activities) report(ctx context.Context, in DeliverInput, out DeliverOutput, err error, h AttemptsSoFar) {
	if a.Events == nil {
		return
	}
	log := activity.GetLogger(ctx)
	d := events.Delivery{Key: in.callerKey(), Tenant: in.Tenant, DeliveryID: in.DeliveryID, Channel: string(in.Delivery.Channel), Attempt: h.Attempt}
	var appErr *temporal.ApplicationError
	switch {
	case err == nil && out.Status == onceflow.Ambiguous:
		d.Status, d.Reason = string(onceflow.Ambiguous), out.Reason
	case err != nil && errors.As(err, &appErr) && finalFailure(ctx, appErr):
		d.Status, d.Reason = string(onceflow.Failed), appErr.Message()
		var details FailureDetails
		if appErr.HasDetails() && appErr.Details(&details) == nil && details.MaybeSent {
			// The workflow settles it so too (workflows.notification.settle).
			d.Status = string(onceflow.Ambiguous)
			d.Reason = "an attempt may have sent it before the delivery failed: " + d.Reason
		}
	}
	if d.Status != "" {
		if rerr := a.Events.Delivery(ctx, d); rerr != nil {
			log.Warn("Could not record the delivery's event", "delivery_id", in.DeliveryID, "error", rerr)
		}
	}
	if in.Delivery.Channel != onceflow.Webhook {
		return
	}
	var rerr error
	switch {
	case err == nil && out.Status != onceflow.Suppressed && out.Receipt != "":
		// This attempt's request was accepted (an ambiguous re-send too;
		// a held delivery has no receipt), or an earlier attempt's, which
		// died before it could say so.
		rerr = a.Events.EndpointOK(ctx, in.Delivery.To)
	case appErr != nil && (appErr.Type() == TypeRejected || appErr.Type() == TypeRetryable):
		rerr = a.Events.EndpointFailed(ctx, string(in.Delivery.Channel), in.Delivery.To)
	}
	if rerr != nil {
		log.Warn("Could not record the endpoint's state", "delivery_id", in.DeliveryID, "error", rerr)
	}
}

// finalFailure reports whether Temporal will not retry the attempt that
// fails with err: it is non-retryable, or the retry policy has no attempt
// left, or the next attempt would start after the activity's
// ScheduleToClose deadline, less retryTimerSlack (the server's own test,
// from the first attempt's scheduled time). An attempt that dies or times out reports
// nothing; the workflow's result still shows it.
func finalFailure(ctx context.Context, err *temporal.ApplicationError) bool {
	if err.NonRetryable() {
		return true
	}
	info := activity.GetInfo(ctx)
	rp := info.RetryPolicy
	if rp == nil {
		return false
	}
	if slices.Contains(rp.NonRetryableErrorTypes, err.Type()) || (rp.MaximumAttempts > 0 && info.Attempt >= rp.MaximumAttempts) {
		return true
	}
	if info.ScheduleToCloseTimeout <= 0 {
		return false
	}
	return time.Now().Add(nextRetryDelay(rp, info.Attempt, err) + retryTimerSlack).After(info.ScheduledTime.Add(info.ScheduleToCloseTimeout))
}

// retryTimerSlack counts an attempt as the last when its next retry would
// start less than this before the deadline: Temporal's retry timers fire
// up to about a second late under load (measured with the test server:
// 100ms retries started 1s apart), and a retry that fires after the
// deadline ends the activity without another attempt, so the attempt
// before it must report. Should the retry run after all, it reports the
// same event, which the outbox keeps once (by its ID); its outcome can
// then differ from the event only if it succeeds within that last second.
const retryTimerSlack = time.Second

// nextRetryDelay is the wait Temporal puts before the attempt after
// attempt: the error's own delay, or the policy's exponential backoff.
func nextRetryDelay(rp *temporal.RetryPolicy, attempt int32, err *temporal.ApplicationError) time.Duration {
	if d := err.NextRetryDelay(); d > 0 {
		return d
	}
	coef := rp.BackoffCoefficient
	if coef < 1 {
		coef = 2
	}
	d := time.Duration(float64(rp.InitialInterval) * math.Pow(coef, float64(attempt-1)))
	if rp.MaximumInterval > 0 && (d <= 0 || d > rp.MaximumInterval) {
		d = rp.MaximumInterval
	}
	return d
}
