// Package workflows holds NotificationWorkflow, the whole lifecycle of one
// notification: validate, wait for send_at on a durable timer, run one
// Deliver activity per delivery in parallel with bounded retries, and report
// what became of each delivery. The workflow ID is notification/<key>
// (notification/<tenant>@<key> for a tenant's), so Temporal keeps at most
// one running notification per idempotency key and tenant. A notification
// with a digest joins its digest instead (digest_event.go). The products
// built on the notification keep their workflows in their folders:
// BroadcastWorkflow in broadcast/, DigestWorkflow in digest/window/.
package workflows

import (
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/activities"
	"github.com/onceflow/onceflow/metrics"
	"github.com/onceflow/onceflow/templates"
)

const (
	// Name is the workflow type, for starting it from any Temporal SDK.
	Name = "NotificationWorkflow"
	// StatusQuery returns the current onceflow.Result.
	StatusQuery = "status"
	// DefaultTaskQueue is the task queue workers poll unless told otherwise.
	DefaultTaskQueue = "onceflow"
	// TypeInvalid is the failure type of a notification that fails
	// validation inside the workflow (one started by another SDK, say).
	TypeInvalid = "InvalidNotification"
	// FingerprintMemo is the memo field in which the Go client puts the
	// payload's fingerprint (onceflow.Notification.Fingerprint) at start.
	FingerprintMemo = "onceflow_fingerprint"
)

// ID is the workflow ID of the notification with the given scoped key
// (onceflow.ScopedKey): notification/<key> for the single tenant,
// notification/<tenant>@<key> for a tenant's.
func ID(scopedKey string) string { return "notification/" + scopedKey }

// Policy bounds the delivery attempts. Changing it affects only new
// attempts: none of it is part of the workflow's deterministic history.
type Policy struct {
	// AttemptTimeout bounds one Deliver attempt (StartToClose). The dedup
	// lease lasts longer, so an attempt that dies leaves a lease that
	// outlives it.
	AttemptTimeout time.Duration
	// FirstRetry is the wait before the second attempt; each later wait
	// doubles, up to MaxRetryInterval.
	FirstRetry       time.Duration
	MaxRetryInterval time.Duration
	// GiveUpAfter bounds all attempts of one delivery (ScheduleToClose).
	GiveUpAfter time.Duration
}

// DefaultPolicy is the Policy a worker uses unless configured otherwise.
func DefaultPolicy() Policy {
	return Policy{
		AttemptTimeout:   30 * time.Second,
		FirstRetry:       time.Second,
		MaxRetryInterval: 5 * time.Minute,
		GiveUpAfter:      24 * time.Hour,
	}
}

// Workflow runs notifications under one Policy.
type Workflow struct {
	policy Policy
	// validate is onceflow.Notification.Validate; tests swap it to show
	// that a change of the rules does not reach recorded histories.
	validate func(onceflow.Notification) error
}

// New returns the workflow with p; zero fields take DefaultPolicy's values.
func New(p Policy) *Workflow {
	return &Workflow{policy: p.WithDefaults(), validate: onceflow.Notification.Validate}
}

// WithDefaults is p with its zero fields set to DefaultPolicy's values.
func (p Policy) WithDefaults() Policy {
	d := DefaultPolicy()
	if p.AttemptTimeout <= 0 {
		p.AttemptTimeout = d.AttemptTimeout
	}
	if p.FirstRetry <= 0 {
		p.FirstRetry = d.FirstRetry
	}
	if p.MaxRetryInterval <= 0 {
		p.MaxRetryInterval = d.MaxRetryInterval
	}
	if p.GiveUpAfter <= 0 {
		p.GiveUpAfter = d.GiveUpAfter
	}
	return p
}

// Run is NotificationWorkflow. It returns the per-delivery result; it fails
// only on an invalid notification, and ends cancelled when cancelled.
func (w *Workflow) Run(ctx workflow.Context, n onceflow.Notification) (onceflow.Result, error) {
	if invalid := w.verdict(ctx, n); invalid != "" {
		return onceflow.Result{}, temporal.NewNonRetryableApplicationError(invalid, TypeInvalid, nil)
	}
	// The claims record the payload's fingerprint in the dedup store. It is
	// computed, not recorded: it only goes into activity inputs, which a
	// replay does not compare, and json.Marshal is deterministic (sorted
	// map keys); workflowcheck flags it only for its type cache.
	r := &notification{policy: w.policy, n: n, fingerprint: n.Fingerprint()} //workflowcheck:ignore
	if err := r.setup(ctx); err != nil {
		return onceflow.Result{}, err
	}
	if n.Digest != nil {
		return r.joinDigest(ctx) // digest_event.go
	}
	return r.run(ctx)
}

// validatedOnce is the change that records the validation verdict in the
// history (see docs/workflow-changes.md).
const validatedOnce = "validated-once"

// verdict is why n is invalid, or "" when it is valid, as decided once when
// the notification started. Validation reads rules that change with
// Onceflow's releases and with Go's URL and address parsing, so a replay
// must not decide again:
//
//   - A run started by this code records the verdict in a side-effect
//     marker; its replays read the marker and never validate.
//   - A history recorded before the marker existed (version
//     DefaultVersion) is only ever replayed, and its first workflow task
//     already decided: the old code failed an invalid notification right
//     there, ending it, so every such run still open was valid. Replaying it
//     as valid keeps it deterministic whatever the rules become. (A closed,
//     rejected run of that era replays as if valid; it has no status query
//     to answer either way.)
func (w *Workflow) verdict(ctx workflow.Context, n onceflow.Notification) string {
	if workflow.GetVersion(ctx, validatedOnce, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return ""
	}
	var invalid string
	err := workflow.SideEffect(ctx, func(workflow.Context) any {
		if err := w.validate(n); err != nil {
			return err.Error()
		}
		return ""
	}).Get(&invalid)
	if err != nil {
		// The marker could not be decoded: fail the task, not the
		// notification, so that a fixed worker can replay it.
		panic(fmt.Sprintf("read the recorded validation verdict: %v", err))
	}
	return invalid
}

// notification is one run's state; the status query reads it.
type notification struct {
	policy      Policy
	n           onceflow.Notification
	fingerprint string
	result      onceflow.Result
	// skip is the recorded preference decision (preferences.go).
	skip map[onceflow.Channel]string
}

// scopedKey names the notification's delivery IDs and dedup records: its
// key within its tenant's scope, the bare key for the single tenant, so
// that histories recorded before tenants existed replay unchanged.
func (r *notification) scopedKey() string { return onceflow.ScopedKey(r.n.Tenant, r.n.Key) }

func (r *notification) setup(ctx workflow.Context) error {
	r.result = onceflow.Result{Key: r.n.Key, SendAt: r.n.SendAt, Deliveries: make([]onceflow.DeliveryResult, len(r.n.Deliveries))}
	for i, d := range r.n.Deliveries {
		r.result.Deliveries[i] = onceflow.DeliveryResult{Delivery: d, DeliveryID: d.ID(r.scopedKey()), Status: onceflow.Pending}
	}
	// The starter sets the search attributes at start; a notification
	// started by another SDK gets them here.
	if _, ok := workflow.GetTypedSearchAttributes(ctx).GetKeyword(KeyAttribute); !ok {
		if err := workflow.UpsertTypedSearchAttributes(ctx, startAttributes(r.n)...); err != nil {
			return err
		}
	}
	if err := setNotificationQuery(ctx, r.n); err != nil { // recover.go
		return err
	}
	return workflow.SetQueryHandler(ctx, StatusQuery, func() (onceflow.Result, error) {
		return r.result, nil
	})
}

// publishStatus keeps the OnceflowStatus search attribute current.
func (r *notification) publishStatus(ctx workflow.Context) error {
	status := string(r.result.Status())
	if current, _ := workflow.GetTypedSearchAttributes(ctx).GetKeyword(StatusAttribute); current == status {
		return nil
	}
	return workflow.UpsertTypedSearchAttributes(ctx, StatusAttribute.ValueSet(status))
}

func (r *notification) run(ctx workflow.Context) (onceflow.Result, error) {
	if r.n.SendAt != nil {
		if wait := r.n.SendAt.Sub(workflow.Now(ctx)); wait > 0 {
			if err := workflow.Sleep(ctx, wait); err != nil {
				r.settleUnfinished(ctx, onceflow.Cancelled, "cancelled before send_at; nothing was sent")
				return r.result, errors.Join(err, r.publishStatus(ctx))
			}
		}
	}

	var content Content
	err := r.checkPreferences(ctx) // preferences.go
	if err == nil {
		content, err = r.content(ctx)
	}
	if err != nil {
		if ctx.Err() != nil {
			r.settleUnfinished(ctx, onceflow.Cancelled, "cancelled before it was sent")
			return r.result, errors.Join(temporal.NewCanceledError(), r.publishStatus(ctx))
		}
		r.settleUnfinished(ctx, onceflow.Failed, "not sent: "+r.failureReason(err))
		return r.result, r.publishStatus(ctx)
	}

	due := workflow.Now(ctx)
	var publishErr error
	wg := workflow.NewWaitGroup(ctx)
	for i := range r.result.Deliveries {
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			r.route(ctx, i, content, due)
			publishErr = errors.Join(publishErr, r.publishStatus(ctx))
		})
	}
	wg.Wait(ctx)
	if publishErr != nil {
		return r.result, publishErr
	}
	if ctx.Err() != nil {
		return r.result, temporal.NewCanceledError()
	}
	return r.result, nil
}

// route delivers deliveries[i], then its fallbacks in order while the last
// step failed. A step that may have been sent (ambiguous) ends the route.
func (r *notification) route(ctx workflow.Context, i int, content Content, due time.Time) {
	dr := &r.result.Deliveries[i]
	summary := fmt.Sprintf("%s delivery %d of %d", dr.Channel, i+1, len(r.result.Deliveries))
	r.deliver(ctx, dr, ActivityID(dr.DeliveryID, 0), summary, content, due)
	for j, fb := range dr.Fallback {
		if dr.LastStep().Status != onceflow.Failed || ctx.Err() != nil {
			return
		}
		step := onceflow.Delivery{Channel: fb.Channel, To: fb.To}
		dr.Fallbacks = append(dr.Fallbacks, onceflow.DeliveryResult{Delivery: step, DeliveryID: step.ID(r.scopedKey()), Status: onceflow.Pending})
		r.deliver(ctx, &dr.Fallbacks[j], ActivityID(dr.DeliveryID, j+1),
			fmt.Sprintf("%s fallback %d for delivery %d", fb.Channel, j+1, i+1), content, due)
	}
}

// ActivityID is the ID of the Deliver activity of a delivery's step: the
// delivery ID for the delivery itself (fallback 0), with the fallback's
// number after it for a fallback.
func ActivityID(deliveryID string, fallback int) string {
	if fallback == 0 {
		return deliveryID
	}
	return fmt.Sprintf("%s/fallback-%d", deliveryID, fallback)
}

// deliver runs one Deliver activity, with retries, and records its outcome
// in dr.
func (r *notification) deliver(ctx workflow.Context, dr *onceflow.DeliveryResult, activityID, summary string, content Content, due time.Time) {
	if r.skipped(ctx, dr) {
		return
	}
	var deliver *activities.Activities
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ActivityID:             activityID,
		Summary:                summary,
		StartToCloseTimeout:    r.policy.AttemptTimeout,
		ScheduleToCloseTimeout: r.policy.GiveUpAfter,
		// A cancelled notification still reports what its in-flight
		// sends did: a send that completes is delivered, not cancelled.
		WaitForCancellation: true,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        r.policy.FirstRetry,
			BackoffCoefficient:     2,
			MaximumInterval:        r.policy.MaxRetryInterval,
			NonRetryableErrorTypes: []string{activities.TypeRejected, activities.TypeNoProvider, activities.TypeKeyConflict},
		},
	})
	body, html := content.For(dr.Channel)
	f := workflow.ExecuteActivity(actx, deliver.Deliver, activities.DeliverInput{
		Key: r.scopedKey(), Tenant: r.n.Tenant, DeliveryID: dr.DeliveryID, Delivery: onceflow.Delivery{Channel: dr.Channel, To: dr.To},
		Subject: content.Subject, Body: body, HTML: html, Timestamp: due, Fingerprint: r.fingerprint,
		Subscriber: r.n.Subscriber, Category: r.n.Category,
	})
	r.settle(ctx, dr, f)
}

// content is the notification's text: its subject and body, or its
// template rendered once by the Render activity, so that every delivery and
// every replay uses the same recorded result.
func (r *notification) content(ctx workflow.Context) (Content, error) {
	if r.n.Template == "" {
		return Content{Subject: r.n.Subject, Text: r.n.Body, Short: r.n.Body}, nil
	}
	var deliver *activities.Activities
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:                "render template " + r.n.Template,
		StartToCloseTimeout:    r.policy.AttemptTimeout,
		ScheduleToCloseTimeout: 10 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        r.policy.FirstRetry,
			NonRetryableErrorTypes: []string{activities.TypeTemplate},
		},
	})
	var rendered templates.Rendered
	err := workflow.ExecuteActivity(actx, deliver.Render, activities.RenderInput{Template: r.n.Template, Data: r.n.Data, Steps: r.n.Steps()}).Get(ctx, &rendered)
	return Content(rendered), err
}

// Content is a notification's text in each form its channels take.
type Content templates.Rendered

// For returns the body, and for e-mail the HTML body, that channel c sends.
func (c Content) For(ch onceflow.Channel) (body, html string) {
	return templates.Rendered(c).For(ch)
}

func (r *notification) settle(ctx workflow.Context, dr *onceflow.DeliveryResult, f workflow.Future) {
	// Counted once: the SDK's workflow metrics handler drops what a replay
	// emits.
	defer func() { metrics.Delivery(workflow.GetMetricsHandler(ctx), dr.Channel, dr.Status) }()
	var out activities.DeliverOutput
	err := f.Get(ctx, &out)
	if err == nil {
		dr.Status, dr.Receipt, dr.Reason, dr.Attempts = out.Status, out.Receipt, out.Reason, out.Attempt
		return
	}
	if temporal.IsCanceledError(err) {
		dr.Status, dr.Reason = onceflow.Cancelled, "cancelled before it was delivered"
		return
	}
	dr.Status, dr.Reason = onceflow.Failed, r.failureReason(err)
	var appErr *temporal.ApplicationError
	var details activities.FailureDetails
	if errors.As(err, &appErr) && appErr.HasDetails() && appErr.Details(&details) == nil {
		dr.Attempts = details.Attempt
		if details.MaybeSent {
			dr.Status = onceflow.Ambiguous
			dr.Reason = "an attempt may have sent it before the delivery failed: " + dr.Reason
		}
		return
	}
	var timeoutErr *temporal.TimeoutError
	if errors.As(err, &timeoutErr) && workflow.GetVersion(ctx, timeoutMaybeSent, workflow.DefaultVersion, 1) >= 1 {
		dr.Status = onceflow.Ambiguous
		dr.Reason = "the last attempt ended without reporting whether it sent it (its worker may have died mid-send), and the delivery gave up: it may have been sent; " + dr.Reason
	}
}

// timeoutMaybeSent is the change that settles a delivery whose last attempt
// timed out as ambiguous rather than failed: the attempt was cut off without
// a report, possibly after its send, so neither "failed" nor a fallback
// would be honest. Histories recorded before it keep "failed".
const timeoutMaybeSent = "timeout-may-have-sent"

func (r *notification) failureReason(err error) string {
	msg := err.Error()
	var (
		appErr     *temporal.ApplicationError
		timeoutErr *temporal.TimeoutError
		actErr     *temporal.ActivityError
	)
	isTimeout := errors.As(err, &timeoutErr)
	switch {
	case errors.As(err, &appErr):
		msg = appErr.Message()
	case isTimeout:
		msg = timeoutErr.Error()
	}
	if isTimeout || (errors.As(err, &actErr) && actErr.RetryState() == enumspb.RETRY_STATE_TIMEOUT) {
		return fmt.Sprintf("gave up after %v of retries; last error: %s", r.policy.GiveUpAfter, msg)
	}
	return msg
}

func (r *notification) settleUnfinished(ctx workflow.Context, s onceflow.Status, reason string) {
	for i := range r.result.Deliveries {
		if dr := &r.result.Deliveries[i]; !dr.Status.Final() {
			dr.Status, dr.Reason = s, reason
			metrics.Delivery(workflow.GetMetricsHandler(ctx), dr.Channel, s)
		}
	}
}
