package broadcast

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/activities"
	"github.com/onceflow/onceflow/broadcast/recipients"
	"github.com/onceflow/onceflow/events"
	"github.com/onceflow/onceflow/templates"
)

// TypeListMissing is the failure type of a chunk whose recipient list is
// not in Redis: expired, or lost by a Redis without persistence. Nothing of
// the chunk is sent, and retrying cannot bring the list back.
const TypeListMissing = "RecipientListMissing"

// TypeChunkUnsettled is the failure type of a DeliverChunk attempt that
// left recipients to retry: the next attempt sends only those.
const TypeChunkUnsettled = "ChunkUnsettled"

// Lists is where DeliverChunk reads a broadcast's recipients and records
// their problems (recipients.Store).
type Lists interface {
	Head(ctx context.Context, l recipients.List) (recipients.Head, error)
	Chunk(ctx context.Context, l recipients.List, i int) ([]onceflow.Recipient, error)
	Record(ctx context.Context, l recipients.List, first, n int, problems []recipients.Problem) error
}

// DefaultChunkInFlight is how many recipients of a chunk one DeliverChunk
// sends at once unless Activities.InFlight says otherwise.
const DefaultChunkInFlight = 32

// Activities runs a broadcast's chunks. Register a *Activities with a
// worker: its one activity is DeliverChunk.
type Activities struct {
	// Deliveries is the delivery core every recipient goes through (claim,
	// send, commit), with its providers, templates and events.
	Deliveries *activities.Activities
	// Lists holds the broadcasts' recipient lists (recipients.Store).
	Lists Lists
	// InFlight is how many recipients one DeliverChunk sends at once;
	// zero means DefaultChunkInFlight.
	InFlight int
}

// NewActivities returns the broadcast activities that deliver through
// deliveries and read their recipients from lists.
func NewActivities(deliveries *activities.Activities, lists Lists) *Activities {
	return &Activities{Deliveries: deliveries, Lists: lists}
}

// ChunkInput names one chunk of one broadcast.
type ChunkInput struct {
	// Key is the broadcast's key, as its webhooks carry it.
	Key  string          `json:"key"`
	List recipients.List `json:"list"`
	// Chunk is the chunk's number, from 0.
	Chunk int `json:"chunk"`
	// Timestamp is when the broadcast became due.
	Timestamp time.Time `json:"timestamp"`
	// RecipientTimeout bounds one recipient's send attempt, as
	// Policy.AttemptTimeout bounds a notification's: the recipient's dedup
	// lease lasts that long plus the lease margin.
	RecipientTimeout time.Duration `json:"recipient_timeout"`
	// GiveUpAt ends the retries: an attempt that starts later settles the
	// chunk's unsettled recipients as failed (or ambiguous where an attempt
	// may have sent) without sending.
	GiveUpAt time.Time `json:"give_up_at"`
}

// ChunkOutput counts what became of a chunk's recipients.
type ChunkOutput struct {
	Delivered  int `json:"delivered"`
	Suppressed int `json:"suppressed"`
	Failed     int `json:"failed"`
	Ambiguous  int `json:"ambiguous"`
	Cancelled  int `json:"cancelled"`
}

// chunkProgress is what the attempts of one chunk know: recorded as the
// heartbeat's details while an attempt runs and when it fails, so that the
// next attempt (after a worker died mid-chunk, say) sends only what is
// left. A recipient settled after the last heartbeat of an attempt that
// died is claimed again by the next one, which finds the record its own
// chunk committed and counts it delivered (outcome): never sent twice.
type chunkProgress struct {
	Attempt int32 `json:"attempt"`
	// Final: the attempt recorded this on its way out; otherwise its
	// worker may have died after it, with sends in flight.
	Final bool `json:"final,omitempty"`
	// Settled holds one byte per recipient: '.' not settled, else the
	// first letter of its status (delivered, suppressed, failed, ambiguous,
	// cancelled).
	Settled string `json:"settled"`
	// Reasons lists distinct reasons; Reason maps a recipient to the
	// reason of its problem, or of its last failed attempt while it is
	// not settled.
	Reasons []string    `json:"reasons,omitempty"`
	Reason  map[int]int `json:"reason,omitempty"`
	// Tried is what unsettled recipients' failed attempts knew of a
	// possible send.
	Tried map[int]activities.AttemptsSoFar `json:"tried,omitempty"`
}

func (p *chunkProgress) reason(i int, r string) {
	for j, known := range p.Reasons {
		if known == r {
			p.Reason[i] = j
			return
		}
	}
	p.Reasons = append(p.Reasons, r)
	p.Reason[i] = len(p.Reasons) - 1
}

func (p *chunkProgress) settle(i int, s onceflow.Status, reason string) {
	b := []byte(p.Settled)
	b[i] = string(s)[0]
	p.Settled = string(b)
	delete(p.Tried, i)
	if s == onceflow.Failed || s == onceflow.Ambiguous {
		p.reason(i, reason)
	} else {
		delete(p.Reason, i)
	}
}

var statusByLetter = map[byte]onceflow.Status{
	'd': onceflow.Delivered, 's': onceflow.Suppressed, 'f': onceflow.Failed, 'a': onceflow.Ambiguous, 'c': onceflow.Cancelled,
}

// DeliverChunk delivers one chunk of a broadcast: for each recipient the
// claim, send and commit of Deliver, InFlight at a time. It returns
// once every recipient is settled, and fails retryably, recording what is
// settled, while some are left to retry. Cancelled, it stops starting
// sends, lets those in flight finish, and counts the rest cancelled.
func (a *Activities) DeliverChunk(ctx context.Context, in ChunkInput) (ChunkOutput, error) {
	info := activity.GetInfo(ctx)
	p := earlierChunkAttempts(ctx, info.Attempt)
	head, err := a.Lists.Head(ctx, in.List)
	var rs []onceflow.Recipient
	if err == nil {
		rs, err = a.Lists.Chunk(ctx, in.List, in.Chunk)
	}
	if errors.Is(err, recipients.ErrMissing) {
		// An earlier attempt that read the list may have sent some of it.
		return ChunkOutput{}, temporal.NewNonRetryableApplicationError(err.Error(), TypeListMissing, nil,
			activities.FailureDetails{MaybeSent: info.Attempt > 1, Attempt: info.Attempt})
	}
	if err != nil {
		return ChunkOutput{}, temporal.NewApplicationErrorWithCause("could not read the chunk's recipients; nothing was sent", activities.TypeDedupUnavailable, err)
	}
	if len(p.Settled) != len(rs) {
		p = chunkProgress{Settled: strings.Repeat(".", len(rs))}
	}
	// Every earlier attempt's possible sends are in p.Tried when there was
	// none, or when the last one recorded them on its way out.
	accounted := info.Attempt == 1 || p.Attempt == info.Attempt
	p.Attempt, p.Final = info.Attempt, false
	if p.Reason == nil {
		p.Reason = map[int]int{}
	}
	if p.Tried == nil {
		p.Tried = map[int]activities.AttemptsSoFar{}
	}
	c := &chunk{a: a, in: in, head: head, rs: rs, p: &p, info: info, accounted: accounted}
	if time.Now().Before(in.GiveUpAt) {
		c.run(ctx)
	}
	select {
	case <-activity.GetWorkerStopChannel(ctx):
		// The worker is stopping: another takes the rest over.
		return ChunkOutput{}, c.unsettled(ctx, "the worker stopped")
	default:
	}
	// Only a cancel request cancels the chunk. The SDK also ends an
	// attempt's context when a heartbeat is answered NotFound (as a server
	// recovering from a crash may answer for a live attempt), when the
	// attempt's deadline passes or when it is paused: then the recipients
	// left are not cancelled but retried, from the recorded progress.
	cancelled := ctx.Err() != nil && temporal.IsCanceledError(context.Cause(ctx))
	if ctx.Err() != nil && !cancelled {
		return ChunkOutput{}, c.unsettled(ctx, "the attempt's context ended ("+context.Cause(ctx).Error()+")")
	}
	for i := range rs {
		if p.Settled[i] != '.' {
			continue
		}
		switch {
		case cancelled && (p.Tried[i].Details().MaybeSent || !accounted):
			p.settle(i, onceflow.Ambiguous, "cancelled after an attempt that may have sent it")
		case cancelled:
			p.settle(i, onceflow.Cancelled, "")
		case !time.Now().Before(in.GiveUpAt):
			c.giveUp(i)
		}
	}
	if strings.Contains(p.Settled, ".") {
		return ChunkOutput{}, c.unsettled(ctx, "")
	}
	return c.finish(ctx, cancelled)
}

// earlierChunkAttempts reads what earlier attempts of the chunk recorded.
func earlierChunkAttempts(ctx context.Context, attempt int32) chunkProgress {
	var p chunkProgress
	if attempt > 1 && activity.HasHeartbeatDetails(ctx) && activity.GetHeartbeatDetails(ctx, &p) == nil {
		// A progress recorded by the previous attempt on its way out
		// accounts for its sends.
		if p.Final && p.Attempt == attempt-1 {
			p.Attempt = attempt
		}
		return p
	}
	return chunkProgress{}
}

// chunk is one attempt at one chunk.
type chunk struct {
	a    *Activities
	in   ChunkInput
	head recipients.Head
	rs   []onceflow.Recipient
	info activity.Info
	// accounted: every earlier attempt's possible sends are in p.Tried.
	accounted bool

	mu sync.Mutex
	p  *chunkProgress
	// retryIn is the soonest retry that the unsettled recipients' errors
	// asked for; 0 when none did.
	retryIn time.Duration
}

func (c *chunk) run(ctx context.Context) {
	inFlight := c.a.InFlight
	if inFlight <= 0 {
		inFlight = DefaultChunkInFlight
	}
	todo := make(chan int)
	var wg sync.WaitGroup
	for range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range todo {
				c.deliver(ctx, i)
			}
		}()
	}
	beat := time.NewTicker(time.Second)
	defer beat.Stop()
	heartbeat := func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		activity.RecordHeartbeat(ctx, *c.p)
	}
	heartbeat()
	stop := activity.GetWorkerStopChannel(ctx)
	c.mu.Lock()
	var left []int
	for i := range c.rs {
		if c.p.Settled[i] == '.' {
			left = append(left, i)
		}
	}
	c.mu.Unlock()
feed:
	for _, i := range left {
		for {
			select {
			case todo <- i:
				continue feed
			case <-ctx.Done():
				break feed
			case <-stop:
				break feed
			case <-beat.C:
				heartbeat()
			}
		}
	}
	close(todo)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			return
		case <-beat.C:
			heartbeat()
		}
	}
}

// deliver sends recipient i through Deliver's claim, send and commit, with
// a deadline of its own, and records the outcome.
func (c *chunk) deliver(ctx context.Context, i int) {
	r := c.rs[i]
	c.mu.Lock()
	h := c.p.Tried[i]
	c.mu.Unlock()
	h.Attempt = c.info.Attempt
	h.Unaccounted = !c.accounted
	deadline := c.info.Deadline
	if d := time.Now().Add(c.in.RecipientTimeout); c.in.RecipientTimeout > 0 && d.Before(deadline) {
		deadline = d
	}
	// In-flight sends finish even when the chunk is cancelled: a send cut
	// off mid-request would be ambiguous, where one let finish is known.
	rctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	scoped := c.in.List.Key
	in := activities.DeliverInput{
		Key: c.in.Key, DeliveryID: onceflow.RecipientDeliveryID(scoped, r.ID), Delivery: onceflow.Delivery{Channel: c.head.Channel, To: r.To},
		Timestamp: c.in.Timestamp, Fingerprint: c.in.List.Fingerprint, LedgerKey: onceflow.BroadcastLedgerKey(scoped),
	}
	out, err := c.send(rctx, in, r, &h, activities.Attempt{Token: activities.ThisAttempt(ctx).Token, Attempt: c.info.Attempt, Deadline: deadline})

	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.p.settle(i, out.Status, out.Reason)
		return
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.NonRetryable() {
		status, reason := activities.FailedOutcome(appErr.Message(), h.Details().MaybeSent)
		c.p.settle(i, status, reason)
		return
	}
	c.p.Tried[i] = h
	msg := err.Error()
	if appErr != nil {
		msg = appErr.Message()
		if d := appErr.NextRetryDelay(); d > 0 && (c.retryIn == 0 || d < c.retryIn) {
			c.retryIn = d
		}
	}
	c.p.reason(i, msg)
}

// send renders the recipient's content when the broadcast has a template,
// then delivers it.
func (c *chunk) send(ctx context.Context, in activities.DeliverInput, r onceflow.Recipient, h *activities.AttemptsSoFar, at activities.Attempt) (activities.DeliverOutput, error) {
	content := templates.Rendered{Subject: c.head.Subject, Text: c.head.Body, Short: c.head.Body}
	if c.head.Template != "" {
		if c.a.Deliveries.Templates == nil {
			return activities.DeliverOutput{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("template %q: this worker has no templates directory (%s)", c.head.Template, templates.EnvDir), activities.TypeTemplate, nil)
		}
		rendered, err := c.a.Deliveries.Templates.Render(c.head.Template, r.Data)
		var te *templates.Error
		if errors.As(err, &te) {
			return activities.DeliverOutput{}, temporal.NewNonRetryableApplicationError(te.Error(), activities.TypeTemplate, nil)
		}
		if err != nil {
			return activities.DeliverOutput{}, err
		}
		content = rendered
	}
	if err := r.Validate(c.head.Channel); err != nil {
		// Only a list written by something other than the starter gets here.
		// The reason names the field, not the recipient: it goes to
		// Temporal with the chunk's progress.
		return activities.DeliverOutput{}, temporal.NewNonRetryableApplicationError("the recipient is invalid: "+err.Field+" "+err.Reason, activities.TypeRejected, nil)
	}
	in.Subject = content.Subject
	in.Body, in.HTML = content.For(c.head.Channel)
	return activities.DeliverWithin(ctx, c.a.Deliveries, in, h, at)
}

// giveUp settles an unsettled recipient once the retries are over.
func (c *chunk) giveUp(i int) {
	reason := "gave up retrying"
	if j, ok := c.p.Reason[i]; ok {
		reason += "; last error: " + c.p.Reasons[j]
	}
	h := c.p.Tried[i]
	if h.Details().MaybeSent || !c.accounted {
		c.p.settle(i, onceflow.Ambiguous, "an attempt may have sent it before the delivery gave up: "+reason)
		return
	}
	c.p.settle(i, onceflow.Failed, reason)
}

// unsettled records the progress and fails the attempt so that the next
// one takes up the recipients left.
func (c *chunk) unsettled(ctx context.Context, why string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.p.Final = true
	activity.RecordHeartbeat(ctx, *c.p)
	left, sample := 0, ""
	for i := range c.rs {
		if c.p.Settled[i] == '.' {
			left++
			if j, ok := c.p.Reason[i]; ok && sample == "" {
				sample = c.p.Reasons[j]
			}
		}
	}
	msg := fmt.Sprintf("%d of %d recipients of chunk %d are not settled yet", left, len(c.rs), c.in.Chunk)
	if why != "" {
		msg += ": " + why
	}
	if sample != "" {
		msg += "; for example: " + sample
	}
	return temporal.NewApplicationErrorWithOptions(msg, TypeChunkUnsettled, temporal.ApplicationErrorOptions{NextRetryDelay: c.retryIn})
}

// finish records the chunk's problems where GET /v1/broadcasts/{key}
// pages them, and counts its outcomes. A cancelled chunk returns its
// counts, never an error: the SDK would report an error on a cancelled
// context as the activity's cancellation, and the workflow would not learn
// what was sent.
func (c *chunk) finish(ctx context.Context, cancelled bool) (ChunkOutput, error) {
	var out ChunkOutput
	var problems []recipients.Problem
	first := c.in.Chunk * c.head.ChunkSize
	for i := range c.rs {
		s := statusByLetter[c.p.Settled[i]]
		switch s {
		case onceflow.Delivered:
			out.Delivered++
		case onceflow.Suppressed:
			out.Suppressed++
		case onceflow.Cancelled:
			out.Cancelled++
		case onceflow.Failed, onceflow.Ambiguous:
			if s == onceflow.Failed {
				out.Failed++
			} else {
				out.Ambiguous++
			}
			problems = append(problems, recipients.Problem{Index: first + i, ID: c.rs[i].ID, Status: s, Reason: c.p.Reasons[c.p.Reason[i]]})
		}
	}
	err := c.a.Lists.Record(context.WithoutCancel(ctx), c.in.List, first, len(c.rs), problems)
	c.reportProblems(ctx, problems)
	if err != nil && cancelled {
		activity.GetLogger(ctx).Warn("A cancelled chunk's problems could not be recorded; its counts stand", "chunk", c.in.Chunk, "error", err)
		return out, nil
	}
	if err != nil {
		c.mu.Lock()
		c.p.Final = true
		activity.RecordHeartbeat(ctx, *c.p)
		c.mu.Unlock()
		return ChunkOutput{}, temporal.NewApplicationErrorWithCause("every recipient of the chunk is settled, but their problems could not be recorded", activities.TypeDedupUnavailable, err)
	}
	return out, nil
}

// reportProblems tells a.Events of a broadcast chunk's failed and
// ambiguous recipients, once every recipient of the chunk has settled. A
// chunk that finishes again (its worker died after reporting) reports the
// same events, which the outbox keeps once, by their IDs.
func (c *chunk) reportProblems(ctx context.Context, problems []recipients.Problem) {
	if c.a.Deliveries.Events == nil {
		return
	}
	tenant, _, scoped := strings.Cut(c.in.List.Key, "@")
	if !scoped {
		tenant = ""
	}
	for _, p := range problems {
		d := events.Delivery{
			Key: c.in.Key, Tenant: tenant, Recipient: p.ID, DeliveryID: onceflow.RecipientDeliveryID(c.in.List.Key, p.ID),
			Channel: string(c.head.Channel), Status: string(p.Status), Reason: p.Reason, Attempt: c.info.Attempt,
		}
		if err := c.a.Deliveries.Events.Delivery(context.WithoutCancel(ctx), d); err != nil {
			activity.GetLogger(ctx).Warn("Could not record a broadcast recipient's event", "delivery_id", d.DeliveryID, "error", err)
		}
	}
}
