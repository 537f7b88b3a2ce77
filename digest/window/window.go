// Package window is the digest's workflow, DigestWorkflow: one run per
// window. It sits below package digest, whose contract it implements,
// because it sends the digest as a notification (package workflows), and
// the notification joins digests through package digest.
//
// DigestWorkflow gathers a subscriber's notifications with the same digest
// key into one delivery per recipient at the end of a window. Its ID is
// digest.ID(tenant, subscriber, key), so Temporal keeps one running digest
// per tenant, subscriber and digest key, and JoinDigest reaches it by
// signal-with-start: concurrent events land in the same run.
//
// One run is one window:
//
//  1. It opens with the events the previous run carried over, or waits
//     for the first event (a run started by signal-with-start has it in
//     its first task; a run continued as new waits up to digestLinger and
//     then ends, if none comes).
//  2. It sleeps for the first event's window, taking every event that
//     comes meanwhile. Repeats of a key, in this window or in a digest
//     sent within digestLinger (a JoinDigest attempt retried after its
//     signal landed), are dropped. An event that would make the digest
//     larger than a notification may be closes the window early and
//     opens the next.
//  3. When the timer fires it drains every signal already received, then
//     sends the digest as a child NotificationWorkflow whose key is derived
//     from the digest and the window's opening time
//     (digestNotificationKey): the claim, send and commit of every
//     notification cover the digest's delivery too.
//  4. It signals each event's workflow the digest's result, and continues
//     as new, carrying the events that came while it was sending (they
//     open the next window) and the keys it sent.
//
// No event is lost between the timer and the end of a run: Temporal
// refuses to close or continue a run while signals it has not handed to
// the workflow are pending, and the run takes them into the next window.
package window

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/digest"
	"github.com/onceflow/onceflow/workflows"
)

const (
	// MaxEvents bounds the events of one digest, and so its history: each
	// costs a signal in and a signal out. A window of 50 events measured
	// 282 history events (TestConcurrentTriggersMakeOneDigest), so 500 stay
	// near 3,000, far below Temporal's limit of 51,200.
	MaxEvents = 500
	// maxRecent bounds the sent keys a digest remembers, so that its
	// continue-as-new input stays far below Temporal's 2 MB payload limit
	// (10,000 keys of 200 bytes and their times) however busy it is.
	maxRecent = 10_000
)

// digestNotificationKey is the key of the notification that sends the
// digest whose window opened at opened: readable when it fits in a key,
// else with the subscriber and digest key hashed.
func digestNotificationKey(subscriber, key string, opened time.Time) string {
	at := opened.UTC().Format("20060102T150405.000Z")
	if k := "digest:" + subscriber + ":" + key + ":" + at; len(k) <= onceflow.MaxKeyLength {
		return k
	}
	sum := sha256.Sum256([]byte(subscriber + "/" + key))
	return "digest:" + hex.EncodeToString(sum[:16]) + ":" + at
}

// Workflow runs DigestWorkflow under the notification's policy: the
// digest's own notification is sent with it, and a digest remembers the
// keys it sent for as long as a JoinDigest may be retried.
type Workflow struct {
	policy workflows.Policy
}

// New returns the digest workflow under p (defaults filled in, as
// workflows.New does).
func New(p workflows.Policy) *Workflow { return &Workflow{policy: p.WithDefaults()} }

// digestLinger is how long a digest remembers the keys it sent (a
// JoinDigest's retries end within digest.JoinGiveUp, and its last attempt
// within an attempt timeout), and how long a run continued as new waits
// for a first event before it ends.
func (w *Workflow) digestLinger() time.Duration { return digest.JoinGiveUp + w.policy.AttemptTimeout }

// Run is DigestWorkflow; register it under digest.WorkflowName.
func (w *Workflow) Run(ctx workflow.Context, in digest.Start) error {
	d := &digestRun{in: in, seen: map[string]bool{}, recent: map[string]time.Time{}}
	d.status = digest.Status{Subscriber: in.Subscriber, Key: in.Key, Events: []string{}}
	now := workflow.Now(ctx)
	// A set is built, whatever the order.
	//workflowcheck:ignore
	for k, at := range in.Recent {
		if now.Sub(at) < w.digestLinger() {
			d.recent[k] = at
		}
	}
	if err := workflow.SetQueryHandler(ctx, digest.StatusQuery, func() (digest.Status, error) { return d.status, nil }); err != nil {
		return err
	}
	events := workflow.GetSignalChannel(ctx, digest.EventSignal)
	receive := func(c workflow.ReceiveChannel, _ bool) {
		var e digest.Signal
		c.Receive(ctx, &e)
		d.offer(e)
	}
	for _, e := range in.Carry {
		d.offer(e)
	}

	if len(d.events) == 0 {
		lingerCtx, stop := workflow.WithCancel(ctx)
		expired := false
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(events, receive)
		sel.AddFuture(workflow.NewTimer(lingerCtx, w.digestLinger()), func(workflow.Future) { expired = true })
		for len(d.events) == 0 && !expired {
			sel.Select(ctx)
		}
		stop()
		d.drain(events)
		if len(d.events) == 0 {
			return nil
		}
	}

	// The window: from now, as long as the first event says.
	opened := workflow.Now(ctx)
	window, _ := time.ParseDuration(d.events[0].Window)
	window = min(max(window, onceflow.MinDigestWindow), onceflow.MaxDigestWindow)
	closes := opened.Add(window)
	d.status.Window, d.status.Opened, d.status.Closes = window.String(), &opened, &closes
	timerCtx, stop := workflow.WithCancel(ctx)
	fired := false
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(events, receive)
	sel.AddFuture(workflow.NewTimer(timerCtx, window), func(workflow.Future) { fired = true })
	for !fired && !d.full {
		sel.Select(ctx)
	}
	stop()
	d.drain(events)

	// Send it; what comes meanwhile is the next window's.
	d.closed = true
	n := d.notification(digestNotificationKey(in.Subscriber, in.Key, opened))
	d.status.Sending = n.Key
	outcome := digest.Outcome{Notification: n.Key, Events: len(d.events), Result: d.send(ctx, n, events, receive)}

	// Tell every event what became of it, taking new events meanwhile.
	signals := workflow.NewSelector(ctx)
	signals.AddReceive(events, receive)
	pending := len(d.events)
	for _, e := range d.events {
		f := workflow.SignalExternalWorkflow(ctx, workflows.ID(onceflow.ScopedKey(in.Tenant, e.Event.Key)), "", digest.OutcomeSignal, outcome)
		// An event's workflow that is gone (deleted, terminated) has no one
		// to tell: its error is not the digest's.
		signals.AddFuture(f, func(workflow.Future) { pending-- })
	}
	for pending > 0 {
		signals.Select(ctx)
	}
	sent := workflow.Now(ctx)
	for _, e := range d.events {
		d.recent[e.Event.Key] = sent
	}
	trimRecent(d.recent, maxRecent)
	d.drain(events)
	return workflow.NewContinueAsNewError(ctx, digest.WorkflowName, digest.Start{
		Tenant: in.Tenant, Subscriber: in.Subscriber, Key: in.Key, Carry: d.next, Recent: d.recent,
	})
}

// trimRecent drops the oldest keys of recent (ties broken by key, so that
// every replay drops the same) until at most limit are left.
func trimRecent(recent map[string]time.Time, limit int) {
	if len(recent) <= limit {
		return
	}
	keys := make([]string, 0, len(recent))
	// Sorted below: the order of the map does not matter.
	//workflowcheck:ignore
	for k := range recent {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c := recent[a].Compare(recent[b]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	for _, k := range keys[:len(keys)-limit] {
		delete(recent, k)
	}
}

// digest is one run's state; the status query reads status.
type digestRun struct {
	in digest.Start
	// events are the window's, in arrival order; next those that came
	// once it was closed or full.
	events, next []digest.Signal
	// seen holds the keys of events and next; recent those of events
	// sent in earlier runs, with when.
	seen   map[string]bool
	recent map[string]time.Time
	// dataBytes is the JSON size of the events' entries in DigestData.
	dataBytes int
	// deliveries is every distinct delivery of events, in first-seen order.
	deliveries []onceflow.Delivery
	// closed: the window is being sent; full: it cannot take more.
	closed, full bool
	status       digest.Status
}

// drain takes every event already received without blocking.
func (d *digestRun) drain(c workflow.ReceiveChannel) {
	for {
		var e digest.Signal
		if !c.ReceiveAsync(&e) {
			return
		}
		d.offer(e)
	}
}

// offer takes event e into the window, or into the next one when the
// window is closed or e does not fit; a key already seen is dropped. The
// first event always fits: validation bounds one event's data and
// deliveries.
func (d *digestRun) offer(e digest.Signal) {
	if _, sent := d.recent[e.Event.Key]; sent || d.seen[e.Event.Key] {
		return
	}
	d.seen[e.Event.Key] = true
	switch {
	case d.closed || d.full:
	case len(d.events) == 0 || d.fits(e):
		d.take(e)
		return
	default:
		d.full = true
	}
	d.next = append(d.next, e)
	d.status.Next = append(d.status.Next, e.Event.Key)
}

func (d *digestRun) take(e digest.Signal) {
	d.events = append(d.events, e)
	d.dataBytes += entryBytes(e.Event)
	for _, dl := range e.Deliveries {
		if !slices.ContainsFunc(d.deliveries, func(x onceflow.Delivery) bool { return x.Channel == dl.Channel && x.To == dl.To }) {
			d.deliveries = append(d.deliveries, dl)
		}
	}
	d.status.Events = append(d.status.Events, e.Event.Key)
}

// digestEnvelope is room in DigestData for what is not an event's entry.
const digestEnvelope = 1024

// fits reports whether e can join the window without making the digest's
// notification larger than a notification may be.
func (d *digestRun) fits(e digest.Signal) bool {
	if len(d.events) >= MaxEvents {
		return false
	}
	if d.dataBytes+entryBytes(e.Event)+1 > onceflow.MaxBodyBytes-digestEnvelope {
		return false
	}
	union := len(d.deliveries)
	for _, dl := range e.Deliveries {
		if !slices.ContainsFunc(d.deliveries, func(x onceflow.Delivery) bool { return x.Channel == dl.Channel && x.To == dl.To }) {
			union++
		}
	}
	return union <= onceflow.MaxDeliveries
}

// entryBytes is the JSON size of e's entry in DigestData. json.Marshal is
// deterministic (sorted map keys); workflowcheck flags it only for its
// type cache.
func entryBytes(e onceflow.DigestEvent) int {
	b, err := json.Marshal(e) //workflowcheck:ignore
	if err != nil {
		return onceflow.MaxBodyBytes
	}
	return len(b)
}

// notification is the digest's own notification: its first event's
// template and category, every event's deliveries, the events as data.
func (d *digestRun) notification(key string) onceflow.Notification {
	list := make([]onceflow.DigestEvent, len(d.events))
	for i, e := range d.events {
		list[i] = e.Event
	}
	first := d.events[0]
	return onceflow.Notification{
		Key: key, Tenant: d.in.Tenant, Subscriber: d.in.Subscriber, Category: first.Category,
		Template: first.Template, Data: onceflow.DigestData(d.in.Subscriber, d.in.Key, list),
		Deliveries: d.deliveries,
	}
}

// send runs n as a child notification and returns its result, taking
// events into the next window while it runs. A child that could not run
// settles every delivery as failed, with why.
func (d *digestRun) send(ctx workflow.Context, n onceflow.Notification, events workflow.ReceiveChannel, receive func(workflow.ReceiveChannel, bool)) onceflow.Result {
	fp := n.Fingerprint() //workflowcheck:ignore: json.Marshal, deterministic
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            workflows.ID(onceflow.ScopedKey(n.Tenant, n.Key)),
		Memo:                  map[string]any{workflows.FingerprintMemo: fp},
		TypedSearchAttributes: workflows.SearchAttributes(n),
		StaticSummary:         n.Summary(),
		// The digest's sends are the notification's own business: a digest
		// that is terminated does not cut them off.
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
	})
	f := workflow.ExecuteChildWorkflow(cctx, workflows.Name, n)
	done := false
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(events, receive)
	sel.AddFuture(f, func(workflow.Future) { done = true })
	for !done {
		sel.Select(ctx)
	}
	var res onceflow.Result
	err := f.Get(ctx, &res)
	if err == nil {
		return res
	}
	res = onceflow.Result{Key: n.Key}
	reason := "the digest's notification did not run: " + err.Error()
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		reason = "the digest's notification did not run: " + appErr.Message()
	}
	for _, dl := range n.Deliveries {
		res.Deliveries = append(res.Deliveries, onceflow.DeliveryResult{Delivery: dl, DeliveryID: dl.ID(onceflow.ScopedKey(n.Tenant, n.Key)), Status: onceflow.Failed, Reason: reason})
	}
	return res
}
