// Package activities holds the side effects of a notification: the Deliver
// activity, which claims a delivery's dedup record, sends it through the
// channel's provider and commits the outcome, so that an activity retried
// any number of times performs its delivery once in effect. It is the
// delivery core the products build on: a broadcast's chunk runs the same
// steps per recipient through DeliverWithin.
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
	// Critical are the categories whose e-mails carry no unsubscribe link
	// (preferences.go).
	Critical preferences.Critical
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
	// LedgerKey, when set, names the dedup records instead of Key: a
	// broadcast recipient's (onceflow.BroadcastLedgerKey). Never sent to
	// Temporal: only a delivery made within another activity (a broadcast's
	// chunk, DeliverWithin) sets it.
	LedgerKey string `json:"-"`
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

// AttemptsSoFar is what the attempts of a delivery so far know of a
// possible send: recorded as the heartbeat details of each attempt that
// fails, which Temporal hands to the next attempt and puts on a final
// timeout, so that a send one attempt may have made is still known when
// later attempts cannot reach the dedup store. Successful attempts record
// nothing: the happy path makes no heartbeat call. Its JSON is in recorded
// histories: keep its field names.
type AttemptsSoFar struct {
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
func earlierAttempts(ctx context.Context) AttemptsSoFar {
	info := activity.GetInfo(ctx)
	sofar := AttemptsSoFar{Attempt: info.Attempt}
	if info.Attempt <= 1 {
		return sofar
	}
	var rec AttemptsSoFar
	if !activity.HasHeartbeatDetails(ctx) || activity.GetHeartbeatDetails(ctx, &rec) != nil {
		sofar.Unaccounted = true
		return sofar
	}
	sofar.MaybeSent = rec.MaybeSent
	sofar.InterruptedAt = rec.InterruptedAt
	sofar.Unaccounted = rec.Unaccounted || rec.Attempt != info.Attempt-1
	return sofar
}

// Details is the FailureDetails of a failure of the attempt that knows
// sofar.
func (sofar AttemptsSoFar) Details() FailureDetails {
	return FailureDetails{MaybeSent: sofar.MaybeSent || sofar.Unaccounted, Attempt: sofar.Attempt}
}

// Deliver performs one delivery at most once in effect: claim, send,
// commit; or release when the send failed. Every failure carries what this
// and every earlier attempt knew about a possible send.
func (a *Activities) Deliver(ctx context.Context, in DeliverInput) (DeliverOutput, error) {
	sofar := earlierAttempts(ctx)
	out, err := a.deliver(ctx, in, &sofar, ThisAttempt(ctx))
	if err != nil {
		activity.RecordHeartbeat(ctx, sofar)
	}
	a.report(ctx, in, out, err, sofar)
	return out, err
}

// Attempt is what one send attempt of a delivery is: its fencing token,
// its number, and the deadline by which its send must end. A Deliver
// activity's attempt is the activity's; each recipient of a DeliverChunk
// attempt gets a shorter deadline of its own, so that a lease left by a
// dead worker runs out in about Policy.AttemptTimeout and not with the
// whole chunk's.
type Attempt struct {
	Token    string
	Attempt  int32
	Deadline time.Time
}

// ThisAttempt is the attempt of the running activity. Its token is
// "<workflow ID>/<run ID>/<activity ID>/<attempt>": the attempts of one
// delivery share all but the attempt number, which tells a record its own
// delivery committed from another's (dedup.Claim.Mine, outcome).
//
// A delivery is thus one activity of one workflow run: a notification's
// Deliver, or one chunk of a broadcast. Its retries are the same delivery,
// whichever worker runs them. Anything with another run ID is a repeat:
// another start of the key, another broadcast, a re-run (a reset or a
// recover starts a new run, and so does a start after Temporal deleted the
// first one). Continue-as-new splits no delivery, since an activity runs
// within one run.
func ThisAttempt(ctx context.Context) Attempt {
	info := activity.GetInfo(ctx)
	return Attempt{
		Token:    fmt.Sprintf("%s/%s/%s/%d", info.WorkflowExecution.ID, info.WorkflowExecution.RunID, info.ActivityID, info.Attempt),
		Attempt:  info.Attempt,
		Deadline: info.Deadline,
	}
}

// DeliverWithin performs one attempt of a delivery made within another
// activity, a broadcast's chunk for each of its recipients: the same
// steps as Deliver, with the attempt and what earlier attempts knew
// (sofar, updated) kept by the caller, and no heartbeat or event of its
// own.
func DeliverWithin(ctx context.Context, a *Activities, in DeliverInput, sofar *AttemptsSoFar, at Attempt) (DeliverOutput, error) {
	return a.deliver(ctx, in, sofar, at)
}

// deliver performs one delivery in named steps: claim its record; settle
// an earlier attempt's doubt by asking the provider; send; commit, or
// release when nothing was sent. outcome says what the steps' findings
// mean for the delivery.
func (a *Activities) deliver(ctx context.Context, in DeliverInput, sofar *AttemptsSoFar, at Attempt) (DeliverOutput, error) {
	if in.Delivery.Channel == onceflow.InApp {
		return a.deliverInApp(ctx, in, sofar, at)
	}
	provider, ok := a.Providers[in.Delivery.Channel]
	if !ok {
		return DeliverOutput{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("this worker has no provider for channel %q", in.Delivery.Channel), TypeNoProvider, nil, sofar.Details())
	}
	if err := a.awaitSlot(ctx, in.Delivery.Channel, at.Deadline, sofar.Details()); err != nil {
		return DeliverOutput{}, err
	}
	d := a.newDelivery(ctx, in, provider, sofar, at)
	f, err := d.claim(ctx)
	if err == nil && f.claim.Ambiguous && d.asksFirst() {
		err = d.resolve(ctx, &f)
	}
	if err == nil && f.sends() {
		err = d.send(ctx, &f)
	}
	if err != nil {
		return DeliverOutput{}, err
	}
	d.commitOrRelease(ctx, &f)
	return settled(ctx, in, at, f), nil
}

// delivery is one attempt at one delivery, as deliver's steps share it.
type delivery struct {
	a        *Activities
	in       DeliverInput
	provider providers.Provider
	sofar    *AttemptsSoFar
	at       Attempt
	rec      dedup.Record
	msg      providers.Message
	margin   time.Duration
}

func (a *Activities) newDelivery(ctx context.Context, in DeliverInput, p providers.Provider, sofar *AttemptsSoFar, at Attempt) *delivery {
	d := &delivery{a: a, in: in, provider: p, sofar: sofar, at: at, margin: a.LeaseMargin,
		rec: dedup.Record{Key: in.Key, DeliveryID: in.DeliveryID, Fingerprint: in.Fingerprint},
		msg: providers.Message{
			DeliveryID: in.DeliveryID, Key: in.callerKey(), To: in.Delivery.To,
			Subject: in.Subject, Body: in.Body, HTML: in.HTML, Timestamp: in.Timestamp,
			UnsubscribeURL: a.unsubscribeURL(ctx, in),
		}}
	if in.LedgerKey != "" {
		d.rec.Key = in.LedgerKey
	}
	if d.margin <= 0 {
		d.margin = DefaultLeaseMargin
	}
	return d
}

// claim takes the delivery's lease, or finds its record committed. It
// fails, having sent nothing, when the dedup store cannot be reached, the
// key belongs to another payload, or another attempt holds the lease.
func (d *delivery) claim(ctx context.Context) (findings, error) {
	// The lease outlives this attempt's deadline; the send ends before it.
	lease := time.Until(d.at.Deadline) + d.margin
	start := time.Now()
	claim, err := d.a.Store.Claim(ctx, d.rec, d.at.Token, lease)
	metrics.DedupOperation(activity.GetMetricsHandler(ctx), metrics.OpClaim, time.Since(start))
	details := d.sofar.Details()
	if err != nil {
		msg := "could not claim the delivery; nothing was sent"
		if details.MaybeSent {
			msg = "could not claim the delivery; this attempt sent nothing, but an earlier one may have sent it"
		}
		return findings{}, temporal.NewApplicationErrorWithCause(msg, TypeDedupUnavailable, err, details)
	}
	switch claim.State {
	case dedup.Conflict:
		activity.GetLogger(ctx).Warn("Delivery refused: the key was used by another payload", "delivery_id", d.in.DeliveryID, "channel", d.in.Delivery.Channel)
		return findings{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("key %q was already used by a notification with a different payload (its dedup record says so); nothing was sent: use a new key for a new notification", d.in.callerKey()),
			TypeKeyConflict, nil, details)
	case dedup.Busy:
		return findings{}, temporal.NewApplicationErrorWithOptions(
			fmt.Sprintf("another attempt holds the delivery's lease for %v more", claim.LeaseLeft.Round(time.Millisecond)),
			TypeBusy, temporal.ApplicationErrorOptions{NextRetryDelay: claim.LeaseLeft, Details: []any{details}})
	case dedup.AlreadySent:
		return findings{claim: claim, receipt: claim.Receipt}, nil
	}
	// The granted claim accounts for every earlier attempt that claimed: a
	// lease left behind reads as ambiguous. A possible send an earlier
	// attempt reported counts even if the record lost it.
	d.sofar.Unaccounted = false
	claim.Ambiguous = claim.Ambiguous || d.sofar.MaybeSent
	d.sofar.MaybeSent = claim.Ambiguous
	if claim.Ambiguous {
		metrics.AmbiguousClaim(activity.GetMetricsHandler(ctx), d.in.Delivery.Channel)
		activity.GetLogger(ctx).Warn("Earlier attempt may have sent this delivery", "delivery_id", d.in.DeliveryID, "channel", d.in.Delivery.Channel)
	}
	return findings{claim: claim}, nil
}

// asksFirst reports whether an earlier attempt's possible send is settled
// by asking the provider (or held) rather than re-sent with the same
// idempotency key: so for channels that Hold, and for a chain, since
// another provider of it does not share the earlier one's keys.
func (d *delivery) asksFirst() bool {
	return d.a.Ambiguity[d.in.Delivery.Channel] != Resend || isChain(d.provider)
}

// resolve settles an earlier attempt's doubt by asking the provider
// whether that attempt's send reached it, once the provider has had time
// to process it (lookupDelay). A provider that cannot be asked leaves the
// delivery held; one that could not answer now fails the attempt
// retryably.
func (d *delivery) resolve(ctx context.Context, f *findings) error {
	resolver, ok := d.provider.(providers.Resolver)
	if !ok {
		f.lookup = unanswered
		return nil
	}
	if d.sofar.InterruptedAt.IsZero() {
		// An attempt that died recorded no time, but its lease had to run
		// out before this claim, margin after its send's deadline. Kept in
		// the heartbeat details, so that a later attempt waits from the
		// same moment.
		d.sofar.InterruptedAt = time.Now().Add(-d.margin)
	}
	if wait := d.a.lookupDelay(*d.sofar); wait > 0 {
		if wait > time.Until(d.at.Deadline)/2 {
			return d.lookupFailed(ctx, &providers.Error{RetryAfter: wait,
				Err: fmt.Errorf("the provider may still be processing the interrupted attempt; asking it in %v", wait.Round(time.Millisecond))})
		}
		select {
		case <-ctx.Done():
			return d.lookupFailed(ctx, ctx.Err())
		case <-time.After(wait):
		}
	}
	receipt, ok, err := d.a.lookup(ctx, resolver, d.msg, d.at.Deadline)
	switch {
	case errors.Is(err, providers.ErrNoLookup):
		f.lookup = unanswered
	case err != nil && providers.Classify(err).Permanent:
		f.lookup, f.lookupErr = unanswered, err
	case err != nil:
		return d.lookupFailed(ctx, err)
	case ok:
		f.lookup, f.receipt = found, receipt.ID
	default:
		f.lookup = absent
		activity.GetLogger(ctx).Info("The provider confirmed that no earlier attempt sent this delivery; sending it once more", "delivery_id", d.in.DeliveryID, "channel", d.in.Delivery.Channel)
	}
	return nil
}

// send hands the message to the provider. A failure releases the lease,
// marking the record ambiguous when the provider may have acted.
func (d *delivery) send(ctx context.Context, f *findings) error {
	sendCtx, cancel := context.WithDeadline(ctx, d.at.Deadline.Add(-sendReserve(time.Until(d.at.Deadline))))
	start := time.Now()
	receipt, err := d.provider.Send(sendCtx, d.msg)
	cancel()
	metrics.ProviderRequest(activity.GetMetricsHandler(ctx), d.in.Delivery.Channel, outcomeClass(err), time.Since(start))
	if err = providers.Redact(err, d.msg); err != nil {
		return d.sendFailed(ctx, err)
	}
	f.receipt, f.replayed = receipt.ID, receipt.Replayed
	return nil
}

// commitOrRelease ends what the claim began: the record of a delivery
// sent, or confirmed by the provider, is committed; a held delivery's
// lease is released, the record staying ambiguous.
func (d *delivery) commitOrRelease(ctx context.Context, f *findings) {
	switch {
	case f.claim.State != dedup.Granted:
	case f.lookup == unanswered:
		d.release(ctx, true)
	default:
		f.commit = d.a.commit(ctx, d.rec, d.at.Token, f.receipt, f.ledgerOutcome())
	}
}

// settled is the output of a delivery whose steps found f.
func settled(ctx context.Context, in DeliverInput, at Attempt, f findings) DeliverOutput {
	out := DeliverOutput{Receipt: f.receipt, Attempt: at.Attempt}
	out.Status, out.Reason = outcome(f)
	activity.GetLogger(ctx).Info("Delivery settled", "delivery_id", in.DeliveryID, "channel", in.Delivery.Channel, "status", out.Status, "receipt", out.Receipt)
	return out
}

// lookupDelay is how long to wait before a lookup's "not found" can be
// trusted: until LookupSettle has passed since the interrupted attempt
// gave up.
func (a *Activities) lookupDelay(sofar AttemptsSoFar) time.Duration {
	settle := a.LookupSettle
	if settle <= 0 {
		settle = DefaultLookupSettle
	}
	return settle - time.Since(sofar.InterruptedAt)
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

// lookupFailed keeps the delivery ambiguous after a lookup that could not
// tell (the record stays marked, so the next attempt looks up again) and
// fails the attempt retryably: a lookup is retried like a send, and a
// delivery that gives up is ambiguous, since its details say MaybeSent.
func (d *delivery) lookupFailed(ctx context.Context, err error) error {
	d.release(ctx, true)
	details := d.sofar.Details()
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
func (d *delivery) sendFailed(ctx context.Context, err error) error {
	pe := providers.Classify(err)
	if pe.MaybeSent {
		d.sofar.MaybeSent, d.sofar.InterruptedAt = true, time.Now()
	}
	d.release(ctx, pe.MaybeSent)
	details := d.sofar.Details()
	if pe.Permanent {
		return temporal.NewNonRetryableApplicationError(pe.Error(), TypeRejected, nil, details)
	}
	return temporal.NewApplicationErrorWithOptions(pe.Error(), TypeRetryable,
		temporal.ApplicationErrorOptions{NextRetryDelay: pe.RetryAfter, Details: []any{details}})
}

// release drops the attempt's lease so that the next attempt need not wait
// for it; maybeSent leaves the record ambiguous. A release that fails only
// costs that wait.
func (d *delivery) release(ctx context.Context, maybeSent bool) {
	if err := d.a.Store.Release(ctx, d.rec, d.at.Token, maybeSent); err != nil {
		activity.GetLogger(ctx).Warn("Release failed; the lease will run out by itself", "delivery_id", d.rec.DeliveryID, "error", err)
	}
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
