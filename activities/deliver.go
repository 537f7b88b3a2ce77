// Package activities holds the side effects of a notification: the Deliver
// activity, which claims a delivery's dedup record, sends it through the
// channel's provider and commits the outcome, so that an activity retried
// any number of times performs its delivery once in effect.
package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/metrics"
	"github.com/onceflow/onceflow/preferences"
	"github.com/onceflow/onceflow/providers"
)

// Failure types of the Deliver activity, stable for workflows and
// for any SDK that inspects them.
const (
	// TypeRejected: the provider refused the delivery permanently.
	TypeRejected = "DeliveryRejected"
	// TypeNoProvider: this worker has no provider for the channel.
	TypeNoProvider = "NoProvider"
	// TypeBusy: another attempt holds the delivery's lease; retried when it
	// ends.
	TypeBusy = "DeliveryBusy"
	// TypeRetryable: the provider failed in a way worth retrying.
	TypeRetryable = "DeliveryRetryable"
	// TypeDedupUnavailable: the dedup store could not be reached; nothing
	// was sent.
	TypeDedupUnavailable = "DedupUnavailable"
	// TypeRateLimited: the channel's rate cap has no slot soon enough;
	// retried when one comes, nothing was sent.
	TypeRateLimited = "RateLimited"
	// TypeLookupFailed: an earlier attempt may have sent the delivery and
	// the provider could not be asked whether it did; retried, nothing was
	// sent.
	TypeLookupFailed = "LookupFailed"
	// TypeKeyConflict: the dedup store says the notification's key was used
	// by a notification with another payload (once Temporal has deleted
	// that one's workflow, say); nothing was sent, and retrying cannot
	// change that.
	TypeKeyConflict = "KeyConflict"
)

// AmbiguityPolicy says what to do when a delivery's earlier attempt may have
// sent it but died before recording the outcome.
type AmbiguityPolicy int

const (
	// Hold: do not send again; report the delivery as ambiguous. Right for
	// channels whose receivers cannot deduplicate (SMS, say).
	Hold AmbiguityPolicy = iota
	// Resend: send again with the same provider idempotency key, and
	// report the delivery as ambiguous unless the receiver confirms it had
	// already applied it.
	Resend
)

// Store is the dedup store the activity claims deliveries in.
type Store interface {
	Claim(ctx context.Context, rec dedup.Record, token string, lease time.Duration) (dedup.Claim, error)
	Commit(ctx context.Context, rec dedup.Record, token, receipt string, outcome dedup.Outcome) error
	Release(ctx context.Context, rec dedup.Record, token string, maybeSent bool) error
}

// Activities sends deliveries. Register a *Activities with a worker.
type Activities struct {
	Store     Store
	Providers map[onceflow.Channel]providers.Provider
	// Ambiguity is the policy per channel; channels not listed Hold.
	Ambiguity map[onceflow.Channel]AmbiguityPolicy
	// Templates renders notifications that name a template; nil when the
	// worker has none.
	Templates Renderer
	// Limits caps the send rate of the channels it lists, across workers.
	Limits map[onceflow.Channel]Limiter
	// LeaseMargin is how much longer than the attempt's deadline a lease
	// lasts, so that a lease never ends while its attempt may still send.
	// Zero means DefaultLeaseMargin.
	LeaseMargin time.Duration
	// LookupSettle is how long after an interrupted attempt a provider's
	// "not found" is trusted. Zero means DefaultLookupSettle.
	LookupSettle time.Duration
	// Lists holds broadcasts' recipient lists, for DeliverChunk.
	Lists Lists
	// ChunkInFlight is how many recipients one DeliverChunk sends at
	// once; zero means DefaultChunkInFlight.
	ChunkInFlight int
	// Preferences decides what subscribers opted out of (preferences.go).
	Preferences Preferences
	// Unsubscribe makes e-mails' List-Unsubscribe links; nil means none.
	Unsubscribe *preferences.Links
	// Events records operational events (events.go); nil records none.
	Events Events
	// Feed keeps the in-app feeds (channel inapp, inapp.go).
	Feed Feed
}

// Limiter hands out send slots at a fixed rate (ratelimit.Limiter).
type Limiter interface {
	Reserve(ctx context.Context, maxWait time.Duration) (wait time.Duration, ok bool, err error)
}

// DefaultLeaseMargin is the lease's margin past the attempt's deadline.
const DefaultLeaseMargin = 5 * time.Second

// DefaultLookupSettle is how long a lookup waits after an interrupted
// attempt before it trusts "not found": a request the sender gave up on may
// still be processed by the provider, and a lookup that came first would
// miss it and send a second copy. Provider APIs answer within seconds.
const DefaultLookupSettle = 10 * time.Second

// DeliverInput is one delivery of one notification.
type DeliverInput struct {
	// Key is the notification's key in its tenant's scope
	// (onceflow.ScopedKey): the dedup records are kept under it.
	Key string `json:"key"`
	// Tenant is the notification's tenant, "" for the single tenant. The
	// provider is given the key without it: a receiver sees the key its
	// caller chose.
	Tenant     string            `json:"tenant,omitempty"`
	DeliveryID string            `json:"delivery_id"`
	Delivery   onceflow.Delivery `json:"delivery"`
	Subject    string            `json:"subject,omitempty"`
	Body       string            `json:"body"`
	// HTML is the e-mail HTML body, when a template gave one.
	HTML string `json:"html,omitempty"`
	// Timestamp is when the notification became due.
	Timestamp time.Time `json:"timestamp"`
	// Fingerprint is the notification's payload fingerprint: the claim
	// refuses a key the dedup store holds for another payload. Inputs
	// scheduled before it existed carry none and skip that check.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Subscriber and Category are the notification's, for the e-mail's
	// unsubscribe link (preferences.go).
	Subscriber string `json:"subscriber,omitempty"`
	Category   string `json:"category,omitempty"`
	// ledgerKey, when set, names the dedup records instead of Key: a
	// broadcast's recipients (onceflow.BroadcastLedgerKey). Never sent to
	// Temporal: only DeliverChunk sets it.
	ledgerKey string
}

// callerKey is the key as the notification's caller chose it, without its
// tenant's scope.
func (in DeliverInput) callerKey() string {
	if in.Tenant == "" {
		return in.Key
	}
	return strings.TrimPrefix(in.Key, in.Tenant+"@")
}

// DeliverOutput is a settled delivery.
type DeliverOutput struct {
	Status  onceflow.Status `json:"status"`
	Receipt string          `json:"receipt,omitempty"`
	Reason  string          `json:"reason,omitempty"`
	Attempt int32           `json:"attempt"`
}

// FailureDetails rides on every failure of Deliver so that the workflow can
// tell a plain failure from one where an attempt may have sent.
type FailureDetails struct {
	MaybeSent bool  `json:"maybe_sent"`
	Attempt   int32 `json:"attempt"`
}

// history is what an attempt knows of the delivery's earlier attempts. Each
// attempt that fails records it as its heartbeat details, which Temporal
// hands to the next attempt and puts on a final timeout, so that a send one
// attempt may have made is still known when later attempts cannot reach the
// dedup store. Successful attempts record nothing: the happy path makes no
// heartbeat call.
type history struct {
	// Attempt is the attempt that recorded it.
	Attempt int32 `json:"attempt"`
	// MaybeSent: an attempt may have sent the delivery.
	MaybeSent bool `json:"maybe_sent,omitempty"`
	// Unaccounted: an attempt ended without recording anything (its worker
	// died, or it timed out), possibly after its send. The next claim that
	// reaches the dedup store settles it: such an attempt's lease turns
	// into the record's ambiguity mark.
	Unaccounted bool `json:"unaccounted,omitempty"`
	// InterruptedAt is when the last attempt that may have sent gave up on
	// its send; zero when no attempt recorded one.
	InterruptedAt time.Time `json:"interrupted_at,omitzero"`
}

// earlierAttempts reads what the attempts before this one recorded.
func earlierAttempts(ctx context.Context) history {
	info := activity.GetInfo(ctx)
	h := history{Attempt: info.Attempt}
	if info.Attempt <= 1 {
		return h
	}
	var rec history
	if !activity.HasHeartbeatDetails(ctx) || activity.GetHeartbeatDetails(ctx, &rec) != nil {
		h.Unaccounted = true
		return h
	}
	h.MaybeSent = rec.MaybeSent
	h.InterruptedAt = rec.InterruptedAt
	h.Unaccounted = rec.Unaccounted || rec.Attempt != info.Attempt-1
	return h
}

// details is the FailureDetails of a failure of the attempt that knows h.
func (h history) details() FailureDetails {
	return FailureDetails{MaybeSent: h.MaybeSent || h.Unaccounted, Attempt: h.Attempt}
}

// Deliver performs one delivery at most once in effect: claim, send,
// commit; or release when the send failed. Every failure carries what this
// and every earlier attempt knew about a possible send.
func (a *Activities) Deliver(ctx context.Context, in DeliverInput) (DeliverOutput, error) {
	h := earlierAttempts(ctx)
	out, err := a.deliver(ctx, in, &h, thisAttempt(ctx))
	if err != nil {
		activity.RecordHeartbeat(ctx, h)
	}
	a.report(ctx, in, out, err, h)
	return out, err
}

// attempt is what one send attempt of a delivery is: its fencing token,
// its number, and the deadline by which its send must end. A Deliver
// activity's attempt is the activity's; each recipient of a DeliverChunk
// attempt gets a shorter deadline of its own, so that a lease left by a
// dead worker runs out in about Policy.AttemptTimeout and not with the
// whole chunk's.
type attempt struct {
	Token    string
	Attempt  int32
	Deadline time.Time
}

func thisAttempt(ctx context.Context) attempt {
	info := activity.GetInfo(ctx)
	return attempt{
		Token:    fmt.Sprintf("%s/%s/%s/%d", info.WorkflowExecution.ID, info.WorkflowExecution.RunID, info.ActivityID, info.Attempt),
		Attempt:  info.Attempt,
		Deadline: info.Deadline,
	}
}

func (a *Activities) deliver(ctx context.Context, in DeliverInput, h *history, info attempt) (DeliverOutput, error) {
	if in.Delivery.Channel == onceflow.InApp {
		return a.deliverInApp(ctx, in, h, info)
	}
	log := activity.GetLogger(ctx)
	provider, ok := a.Providers[in.Delivery.Channel]
	if !ok {
		return DeliverOutput{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("this worker has no provider for channel %q", in.Delivery.Channel), TypeNoProvider, nil, h.details())
	}
	if err := a.awaitSlot(ctx, in.Delivery.Channel, info.Deadline, h.details()); err != nil {
		return DeliverOutput{}, err
	}
	rec := dedup.Record{Key: in.Key, DeliveryID: in.DeliveryID, Fingerprint: in.Fingerprint}
	if in.ledgerKey != "" {
		rec.Key = in.ledgerKey
	}
	token := info.Token
	margin := a.LeaseMargin
	if margin <= 0 {
		margin = DefaultLeaseMargin
	}
	// The lease outlives this attempt's deadline; the send ends before it.
	lease := time.Until(info.Deadline) + margin

	claimStart := time.Now()
	claim, err := a.Store.Claim(ctx, rec, token, lease)
	metrics.DedupOperation(activity.GetMetricsHandler(ctx), metrics.OpClaim, time.Since(claimStart))
	if err != nil {
		msg := "could not claim the delivery; nothing was sent"
		if h.details().MaybeSent {
			msg = "could not claim the delivery; this attempt sent nothing, but an earlier one may have sent it"
		}
		return DeliverOutput{}, temporal.NewApplicationErrorWithCause(msg, TypeDedupUnavailable, err, h.details())
	}
	switch claim.State {
	case dedup.Conflict:
		log.Warn("Delivery refused: the key was used by another payload", "delivery_id", in.DeliveryID, "channel", in.Delivery.Channel)
		return DeliverOutput{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("key %q was already used by a notification with a different payload (its dedup record says so); nothing was sent: use a new key for a new notification", in.callerKey()),
			TypeKeyConflict, nil, h.details())
	case dedup.AlreadySent:
		log.Info("Delivery suppressed: already sent", "delivery_id", in.DeliveryID, "channel", in.Delivery.Channel)
		return suppressed(claim, info.Attempt), nil
	case dedup.Busy:
		return DeliverOutput{}, temporal.NewApplicationErrorWithOptions(
			fmt.Sprintf("another attempt holds the delivery's lease for %v more", claim.LeaseLeft.Round(time.Millisecond)),
			TypeBusy, temporal.ApplicationErrorOptions{NextRetryDelay: claim.LeaseLeft, Details: []any{h.details()}})
	}
	// The granted claim accounts for every earlier attempt that claimed: a
	// lease left behind reads as ambiguous. A possible send an earlier
	// attempt reported counts even if the record lost it.
	h.Unaccounted = false
	claim.Ambiguous = claim.Ambiguous || h.MaybeSent
	h.MaybeSent = claim.Ambiguous

	msg := providers.Message{
		DeliveryID: in.DeliveryID, Key: in.callerKey(), To: in.Delivery.To,
		Subject: in.Subject, Body: in.Body, HTML: in.HTML, Timestamp: in.Timestamp,
		UnsubscribeURL: a.unsubscribeURL(ctx, in),
	}
	// absent: the provider confirmed that no earlier attempt sent it, so
	// this attempt's send is the only one.
	absent := false
	if claim.Ambiguous {
		metrics.AmbiguousClaim(activity.GetMetricsHandler(ctx), in.Delivery.Channel)
		log.Warn("Earlier attempt may have sent this delivery", "delivery_id", in.DeliveryID, "channel", in.Delivery.Channel)
		if a.Ambiguity[in.Delivery.Channel] != Resend || isChain(provider) {
			hold := func(reason string) (DeliverOutput, error) {
				if err := a.Store.Release(ctx, rec, token, true); err != nil {
					log.Warn("Release failed; the lease will run out by itself", "delivery_id", in.DeliveryID, "error", err)
				}
				return DeliverOutput{Status: onceflow.Ambiguous, Attempt: info.Attempt, Reason: reason}, nil
			}
			const held = "an earlier attempt may have sent it and stopped before recording the outcome; held, not sent again"
			resolver, ok := provider.(providers.Resolver)
			if !ok {
				return hold(held)
			}
			if h.InterruptedAt.IsZero() {
				// An attempt that died recorded no time, but its lease had
				// to run out before this claim, margin after its send's
				// deadline. Kept in the history, so that a later attempt
				// waits from the same moment.
				h.InterruptedAt = time.Now().Add(-margin)
			}
			if wait := a.settle(*h); wait > 0 {
				if wait > time.Until(info.Deadline)/2 {
					return DeliverOutput{}, a.lookupFailed(ctx, rec, token, h.details(), &providers.Error{RetryAfter: wait,
						Err: fmt.Errorf("the provider may still be processing the interrupted attempt; asking it in %v", wait.Round(time.Millisecond))})
				}
				select {
				case <-ctx.Done():
					return DeliverOutput{}, a.lookupFailed(ctx, rec, token, h.details(), ctx.Err())
				case <-time.After(wait):
				}
			}
			receipt, found, err := a.lookup(ctx, resolver, msg, info.Deadline)
			switch {
			case errors.Is(err, providers.ErrNoLookup):
				return hold(held)
			case err != nil && providers.Classify(err).Permanent:
				return hold(held + "; the provider could not be asked whether it has it (" + err.Error() + ")")
			case err != nil:
				return DeliverOutput{}, a.lookupFailed(ctx, rec, token, h.details(), err)
			case found:
				return a.confirmed(ctx, in, rec, token, receipt, info.Attempt)
			}
			absent = true
			log.Info("The provider confirmed that no earlier attempt sent this delivery; sending it once more", "delivery_id", in.DeliveryID, "channel", in.Delivery.Channel)
		}
	}

	sendCtx, cancel := context.WithDeadline(ctx, info.Deadline.Add(-sendReserve(time.Until(info.Deadline))))
	sendStart := time.Now()
	receipt, err := provider.Send(sendCtx, msg)
	cancel()
	metrics.ProviderRequest(activity.GetMetricsHandler(ctx), in.Delivery.Channel, outcomeClass(err), time.Since(sendStart))
	err = providers.Redact(err, msg)
	if err != nil {
		if providers.Classify(err).MaybeSent {
			h.MaybeSent, h.InterruptedAt = true, time.Now()
		}
		return DeliverOutput{}, a.sendFailed(ctx, rec, token, h.details(), err)
	}

	out := DeliverOutput{Status: onceflow.Delivered, Receipt: receipt.ID, Attempt: info.Attempt}
	outcome := dedup.Clean
	switch {
	case receipt.Replayed:
		outcome = dedup.Confirmed
	case claim.Ambiguous && !absent:
		outcome = dedup.Unconfirmed
	}
	switch err := a.commit(ctx, rec, token, receipt.ID, outcome); {
	case errors.Is(err, dedup.ErrTakenOver):
		out.Status = onceflow.Ambiguous
		out.Reason = "another attempt took over while this one was sending; the receiver may have it twice"
	case err != nil:
		out.Reason = "delivered, but the dedup record could not be written (" + err.Error() + "); a new notification with this key may re-send it with the same idempotency key"
	case receipt.Replayed:
		// An earlier attempt reached the receiver although it did not
		// report success (a 5xx after applying it, a timeout, a dead worker).
		out.Reason = "an earlier attempt may have sent it: the receiver had already applied an earlier attempt of it and confirmed that it applied it once"
	case absent:
		out.Reason = "an earlier attempt was interrupted; the provider confirmed that it had not sent it, and it was sent once"
	case claim.Ambiguous:
		out.Status = onceflow.Ambiguous
		out.Reason = "an earlier attempt may have sent it (it timed out, was cut off, or got a server error, which a receiver may answer after applying it); re-sent with the same idempotency key, which the receiver did not confirm as a repeat"
	}
	log.Info("Delivery settled", "delivery_id", in.DeliveryID, "channel", in.Delivery.Channel, "status", out.Status, "receipt", out.Receipt)
	return out, nil
}

// settle is how long to wait before a lookup's "not found" can be trusted:
// until LookupSettle has passed since the interrupted attempt gave up.
func (a *Activities) settle(h history) time.Duration {
	settle := a.LookupSettle
	if settle <= 0 {
		settle = DefaultLookupSettle
	}
	return settle - time.Since(h.InterruptedAt)
}

// lookupMargin is how long before the notification became due a lookup
// starts searching: room for the skew between Temporal's clock, which
// dated it, and the provider's, which dates its messages.
const lookupMargin = time.Minute

// lookup asks the provider whether an earlier attempt's send reached it,
// within the first half of what is left of the attempt, so that a send
// after "not found" still has time.
//
// It searches from the time the notification became due (less
// lookupMargin): every attempt of the delivery began after it, and it is
// in the activity's input, the same on every attempt. The first attempt
// that may have sent is not known any better: an attempt whose worker
// died records nothing, and that is the very attempt being looked for.
func (a *Activities) lookup(ctx context.Context, r providers.Resolver, m providers.Message, deadline time.Time) (providers.Receipt, bool, error) {
	end := deadline.Add(-sendReserve(time.Until(deadline)))
	lctx, cancel := context.WithDeadline(ctx, time.Now().Add(time.Until(end)/2))
	defer cancel()
	receipt, found, err := r.Lookup(lctx, m, m.Timestamp.Add(-lookupMargin))
	return receipt, found, providers.Redact(err, m)
}

// confirmed commits a delivery that the provider confirmed an earlier,
// interrupted attempt had sent.
func (a *Activities) confirmed(ctx context.Context, in DeliverInput, rec dedup.Record, token string, receipt providers.Receipt, attempt int32) (DeliverOutput, error) {
	out := DeliverOutput{Status: onceflow.Delivered, Receipt: receipt.ID, Attempt: attempt,
		Reason: "delivered, confirmed by the provider after an interrupted attempt; not sent again"}
	switch err := a.commit(ctx, rec, token, receipt.ID, dedup.Clean); {
	case errors.Is(err, dedup.ErrTakenOver):
		out.Status = onceflow.Ambiguous
		out.Reason = "confirmed by the provider after an interrupted attempt, but another attempt took over meanwhile and may have sent it again"
	case err != nil:
		out.Reason += "; the dedup record could not be written (" + err.Error() + ")"
	}
	activity.GetLogger(ctx).Info("Delivery settled by the provider's lookup", "delivery_id", in.DeliveryID, "channel", in.Delivery.Channel, "status", out.Status, "receipt", out.Receipt)
	return out, nil
}

// lookupFailed keeps the delivery ambiguous after a lookup that could not
// tell (the record stays marked, so the next attempt looks up again) and
// fails the attempt retryably: a lookup is retried like a send, and a
// delivery that gives up is ambiguous, since its details say MaybeSent.
func (a *Activities) lookupFailed(ctx context.Context, rec dedup.Record, token string, details FailureDetails, err error) error {
	if rerr := a.Store.Release(ctx, rec, token, true); rerr != nil {
		activity.GetLogger(ctx).Warn("Release failed; the lease will run out by itself", "delivery_id", rec.DeliveryID, "error", rerr)
	}
	details.MaybeSent = true
	return temporal.NewApplicationErrorWithOptions(
		"an earlier attempt may have sent it, and asking the provider whether it did failed; not sent again: "+err.Error(),
		TypeLookupFailed, temporal.ApplicationErrorOptions{NextRetryDelay: providers.Classify(err).RetryAfter, Details: []any{details}})
}

// awaitSlot waits for the channel's next send slot when its rate is capped.
// A slot more than half the attempt away is not taken: the attempt ends,
// having claimed and sent nothing, and is retried when the slot comes.
func (a *Activities) awaitSlot(ctx context.Context, ch onceflow.Channel, deadline time.Time, details FailureDetails) error {
	limit, ok := a.Limits[ch]
	if !ok {
		return nil
	}
	wait, reserved, err := limit.Reserve(ctx, time.Until(deadline)/2)
	if err != nil {
		return temporal.NewApplicationErrorWithCause("could not reserve a send slot; this attempt sent nothing", TypeDedupUnavailable, err, details)
	}
	if !reserved {
		metrics.RateLimitDeferral(activity.GetMetricsHandler(ctx), ch)
		return temporal.NewApplicationErrorWithOptions(fmt.Sprintf("channel %s is at its rate limit; next slot in %v", ch, wait.Round(time.Millisecond)),
			TypeRateLimited, temporal.ApplicationErrorOptions{NextRetryDelay: wait, Details: []any{details}})
	}
	metrics.RateLimitWait(activity.GetMetricsHandler(ctx), ch, wait)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(wait):
		return nil
	}
}

// sendFailed releases the lease (marking the record ambiguous when the
// provider may have acted) and turns the provider's error into the
// activity's failure.
func (a *Activities) sendFailed(ctx context.Context, rec dedup.Record, token string, details FailureDetails, err error) error {
	pe := providers.Classify(err)
	if rerr := a.Store.Release(ctx, rec, token, pe.MaybeSent); rerr != nil {
		activity.GetLogger(ctx).Warn("Release failed; the lease will run out by itself", "delivery_id", rec.DeliveryID, "error", rerr)
	}
	details.MaybeSent = details.MaybeSent || pe.MaybeSent
	if pe.Permanent {
		return temporal.NewNonRetryableApplicationError(pe.Error(), TypeRejected, nil, details)
	}
	return temporal.NewApplicationErrorWithOptions(pe.Error(), TypeRetryable,
		temporal.ApplicationErrorOptions{NextRetryDelay: pe.RetryAfter, Details: []any{details}})
}

// commit records the send, retrying briefly: the side effect has happened,
// so a Redis restart in this window must not turn it into a re-send.
func (a *Activities) commit(ctx context.Context, rec dedup.Record, token, receipt string, outcome dedup.Outcome) error {
	wait := 100 * time.Millisecond
	for {
		start := time.Now()
		err := a.Store.Commit(ctx, rec, token, receipt, outcome)
		metrics.DedupOperation(activity.GetMetricsHandler(ctx), metrics.OpCommit, time.Since(start))
		if err == nil || errors.Is(err, dedup.ErrTakenOver) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// outcomeClass is the outcome label of a provider request that ended with
// err.
func outcomeClass(err error) string {
	if err == nil {
		return metrics.OutcomeOK
	}
	switch pe := providers.Classify(err); {
	case pe.MaybeSent:
		return metrics.OutcomeMaybeSent
	case pe.Permanent:
		return metrics.OutcomeRejected
	}
	return metrics.OutcomeRetryable
}

// suppressed reports a delivery an earlier attempt or notification
// committed, passing on what that attempt knew about duplicates: the result
// of the attempt that sent it may never have reached the workflow.
func suppressed(c dedup.Claim, attempt int32) DeliverOutput {
	out := DeliverOutput{Status: onceflow.Suppressed, Receipt: c.Receipt, Attempt: attempt,
		Reason: "already delivered by an earlier attempt or notification with this key; not sent again"}
	switch c.Outcome {
	case dedup.Confirmed:
		out.Reason = "already delivered; not sent again. An earlier attempt may have sent it and it was re-sent, but the receiver confirmed that it applied it once"
	case dedup.Unconfirmed:
		out.Status = onceflow.Ambiguous
		out.Reason = "already delivered; not sent again. An earlier attempt may have sent it and it was re-sent; the receiver may have it twice"
	}
	return out
}

// isChain reports whether p may hand a message to one of several providers.
// A re-send after a possible send must not go through one: the earlier
// attempt's provider is unknown, and another provider does not share its
// idempotency keys.
func isChain(p providers.Provider) bool {
	c, ok := p.(providers.Chain)
	return ok && len(c) > 1
}

// sendReserve is the part of an attempt's remaining time kept back from the
// send for the commit: a fifth, between 100ms and 2s.
func sendReserve(remaining time.Duration) time.Duration {
	return min(max(remaining/5, 100*time.Millisecond), 2*time.Second)
}
