package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/digest"
)

// joinDigest is the life of a notification with a digest (an event): it
// joins its digest (JoinDigest, signal-with-start of DigestWorkflow), waits
// for the digest to be sent, and takes the digest's result for its own
// deliveries, with the digest's notification named in Result.Digest. Until
// then its deliveries are pending, with a reason that names the digest.
//
// An event cannot be cancelled: it joins its digest at once, and the
// digest sends what it gathered. A cancel request is recorded and has no
// effect, so that the event's status never says "cancelled" of something
// its digest sent.
func (r *notification) joinDigest(ctx workflow.Context) (onceflow.Result, error) {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	dg := *r.n.Digest
	r.result.Digest = &onceflow.DigestRef{Key: dg.Key, Subscriber: r.n.Subscriber}
	waiting := fmt.Sprintf("waiting in digest %q of subscriber %s; sent when its window ends", dg.Key, r.n.Subscriber)
	for i := range r.result.Deliveries {
		r.result.Deliveries[i].Reason = waiting
	}

	var a *digest.Activities
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ActivityID:             "join-digest",
		Summary:                "join digest " + dg.Key,
		StartToCloseTimeout:    r.policy.AttemptTimeout,
		ScheduleToCloseTimeout: digest.JoinGiveUp,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        r.policy.FirstRetry,
			BackoffCoefficient:     2,
			MaximumInterval:        r.policy.MaxRetryInterval,
			NonRetryableErrorTypes: []string{digest.TypeRefused},
		},
	})
	in := digest.JoinInput{
		WorkflowID: digest.ID(r.n.Tenant, r.n.Subscriber, dg.Key), WorkflowType: digest.WorkflowName, Signal: digest.EventSignal,
		Start: digest.Start{Tenant: r.n.Tenant, Subscriber: r.n.Subscriber, Key: dg.Key},
		Event: digest.Signal{
			Event:  onceflow.DigestEvent{Key: r.n.Key, Data: r.n.Data},
			Window: dg.Window, Template: r.n.Template, Category: r.n.Category, Deliveries: r.n.Deliveries,
		},
	}
	if err := workflow.ExecuteActivity(actx, a.JoinDigest, in).Get(ctx, nil); err != nil {
		// An attempt may have signalled before the failure: the digest may
		// carry the event, so this is not a plain failure.
		r.settleEvent(onceflow.Ambiguous, "could not confirm that it joined its digest (it may still be sent in it): "+r.failureReason(err))
		return r.result, r.publishStatus(ctx)
	}

	// The digest reports once it was sent: after at most two windows (an
	// event that does not fit a full window waits for the next), plus the
	// time the digest's notification may take.
	var outcome digest.Outcome
	got := false
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(workflow.GetSignalChannel(ctx, digest.OutcomeSignal), func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, &outcome)
		got = true
	})
	wait := 2*dg.WindowDuration() + 2*r.policy.GiveUpAfter + time.Hour
	sel.AddFuture(workflow.NewTimer(ctx, wait), func(workflow.Future) {})
	sel.Select(ctx)
	if !got {
		r.settleEvent(onceflow.Ambiguous, fmt.Sprintf("its digest did not report within %v of the event joining it; see the digest's notification", wait))
		return r.result, r.publishStatus(ctx)
	}
	r.result.Digest.Notification, r.result.Digest.Events = outcome.Notification, outcome.Events
	for i := range r.result.Deliveries {
		dr := &r.result.Deliveries[i]
		sent, ok := findDelivery(outcome.Result, dr.Delivery)
		if !ok {
			dr.Status, dr.Reason = onceflow.Failed, fmt.Sprintf("digest %s has no such delivery", outcome.Notification)
			continue
		}
		dr.DeliveryID, dr.Status, dr.Receipt, dr.Attempts, dr.Fallbacks = sent.DeliveryID, sent.Status, sent.Receipt, sent.Attempts, sent.Fallbacks
		dr.Reason = fmt.Sprintf("sent in digest %s with %d events", outcome.Notification, outcome.Events)
		if sent.Reason != "" {
			dr.Reason += ": " + sent.Reason
		}
	}
	return r.result, r.publishStatus(ctx)
}

// settleEvent settles every delivery of an event that did not go out in a
// digest. The digest's notification counts the deliveries it sends, so an
// event counts none.
func (r *notification) settleEvent(s onceflow.Status, reason string) {
	for i := range r.result.Deliveries {
		r.result.Deliveries[i].Status, r.result.Deliveries[i].Reason = s, reason
	}
}

func findDelivery(res onceflow.Result, d onceflow.Delivery) (onceflow.DeliveryResult, bool) {
	for _, dr := range res.Deliveries {
		if dr.Channel == d.Channel && dr.To == d.To {
			return dr, true
		}
	}
	return onceflow.DeliveryResult{}, false
}
