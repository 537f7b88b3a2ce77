package activities

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/feed"
	"github.com/onceflow/onceflow/metrics"
)

// Feed writes in-app deliveries (feed.Store): the item and the delivery's
// dedup record in one atomic step.
type Feed interface {
	Deliver(ctx context.Context, d feed.Delivery) (feed.Outcome, string, error)
}

// deliverInApp performs an in-app delivery. Onceflow is the receiver, so
// there is no claim, send and commit with a window between them: the feed
// writes the item and commits the record in one Lua script, or does
// neither. An attempt that died before the script ran wrote nothing, and
// its retry writes the item; one that died after it left a committed
// record, and its retry finds it. The outcome is never ambiguous, whatever
// the attempts before say, once an attempt gets the script's answer.
func (a *Activities) deliverInApp(ctx context.Context, in DeliverInput, h *AttemptsSoFar, info Attempt) (DeliverOutput, error) {
	if a.Feed == nil {
		return DeliverOutput{}, temporal.NewNonRetryableApplicationError("this worker has no in-app feed (channel inapp)", TypeNoProvider, nil, h.Details())
	}
	if in.LedgerKey != "" {
		return DeliverOutput{}, temporal.NewNonRetryableApplicationError("inapp is not a broadcast channel", TypeNoProvider, nil, h.Details())
	}
	if err := a.awaitSlot(ctx, in.Delivery.Channel, info.Deadline, h.Details()); err != nil {
		return DeliverOutput{}, err
	}
	// All attempts of this activity share the token up to its attempt
	// number (thisAttempt).
	activityToken := info.Token[:max(strings.LastIndex(info.Token, "/"), 0)]
	start := time.Now()
	outcome, receipt, err := a.Feed.Deliver(ctx, feed.Delivery{
		Tenant: in.Tenant, Subscriber: in.Delivery.To, DeliveryID: in.DeliveryID, Key: in.callerKey(),
		Subject: in.Subject, Body: in.Body, Fingerprint: in.Fingerprint, Token: info.Token, Activity: activityToken,
	})
	metrics.DedupOperation(activity.GetMetricsHandler(ctx), metrics.OpCommit, time.Since(start))
	if err != nil {
		// The script may have run (a reply lost on the way back, say): the
		// next attempt reads the record and tells, and its answer is
		// final. Should none ever reach Redis, the delivery gives up as
		// ambiguous, not failed.
		h.MaybeSent = true
		return DeliverOutput{}, temporal.NewApplicationErrorWithCause(
			"could not write to the in-app feed; the next attempt finds out whether this one did", TypeDedupUnavailable, err, h.Details())
	}
	f := findings{inApp: true, receipt: receipt, claim: dedup.Claim{State: dedup.Granted}}
	switch outcome {
	case feed.Conflict:
		return DeliverOutput{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("key %q was already used by a notification with a different payload (its in-app record says so); nothing was written: use a new key for a new notification", in.callerKey()),
			TypeKeyConflict, nil, FailureDetails{Attempt: info.Attempt})
	case feed.Mine, feed.AlreadySent:
		f.claim = dedup.Claim{State: dedup.AlreadySent, Receipt: receipt, Mine: outcome == feed.Mine}
	}
	return settled(ctx, in, info, f), nil
}
