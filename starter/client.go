// Package starter is the Go client applications use to send notifications
// and follow them: Send, Wait, Status and Cancel, all by idempotency key,
// within one tenant's scope (ForTenant).
package starter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/workflows"
)

// Client starts and follows notifications through a Temporal client.
type Client struct {
	tc        client.Client
	taskQueue string
	ledger    Ledger
	log       *slog.Logger
	// tenant scopes every key (onceflow.ScopedKey); "" is the single
	// tenant.
	tenant string
	// broadcasts is set by WithRecipientStore (broadcast.go).
	broadcasts broadcasts
	// maxSendAhead bounds send_at (WithMaxSendAhead).
	maxSendAhead time.Duration
}

// Ledger tells which payload a key was used for, after Temporal may have
// forgotten: dedup.Store keeps the fingerprint of the payload whose
// deliveries were claimed under a key for the dedup window, which outlives
// the namespace's retention.
type Ledger interface {
	// Fingerprint returns the fingerprint recorded for key, or "" when
	// none is.
	Fingerprint(ctx context.Context, key string) (string, error)
}

// Option configures a Client.
type Option func(*Client)

// WithLedger makes Send ask l for the key's fingerprint before it starts
// anything, so that a key reused with another payload is refused with a
// *onceflow.ConflictError even once its workflow has been deleted. Without
// a ledger such a notification starts, and its deliveries fail with
// activities.TypeKeyConflict instead: nothing is sent either way.
func WithLedger(l Ledger) Option { return func(c *Client) { c.ledger = l } }

// WithLogger sets where the Client logs what it cannot report as an error
// (a ledger it could not read); nil keeps the default, slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) {
		if l != nil {
			c.log = l
		}
	}
}

// ledgerTimeout bounds the ledger read, so that a Redis that hangs delays a
// start by at most this much.
const ledgerTimeout = 2 * time.Second

// New returns a Client that starts notifications on taskQueue (empty means
// workflows.DefaultTaskQueue).
func New(tc client.Client, taskQueue string, opts ...Option) *Client {
	if taskQueue == "" {
		taskQueue = workflows.DefaultTaskQueue
	}
	c := &Client{tc: tc, taskQueue: taskQueue, log: slog.Default()}
	for _, opt := range opts {
		opt(c)
	}
	return c
}

// Started identifies the workflow run that carries a notification. Pass
// it to WaitRun to wait for that run.
type Started struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	// Key is the notification's idempotency key, which WaitRun's errors
	// name; callers already have it, so it is not part of the JSON.
	Key string `json:"-"`
}

// Send starts n, or joins the notification already started with its key:
// a running one, or one that completed. A notification that was cancelled
// or failed is started again. The same key with a different payload is a
// *onceflow.ConflictError, and an invalid n a *onceflow.ValidationError;
// neither starts anything. With a ledger (WithLedger), the key is checked
// there first, which also catches a payload that differs from one whose
// workflow Temporal has since deleted.
func (c *Client) Send(ctx context.Context, n onceflow.Notification) (Started, error) {
	if err := c.scope(&n); err != nil {
		return Started{}, err
	}
	if err := c.validate(n); err != nil {
		return Started{}, err
	}
	fp := n.Fingerprint()
	if c.ledger != nil {
		if err := c.checkLedger(ctx, n.Key, fp); err != nil {
			return Started{}, err
		}
	}
	id := c.workflowID(n.Key)
	run, err := c.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: c.taskQueue,
		// A start that finds the key's run running, or completed (the reuse
		// policy restarts only a cancelled or failed one), fails with that
		// run's ID instead of joining it silently: success then means a new
		// run that carries n, with nothing to compare, which spares a fresh
		// notification the describe below (issue #11).
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		Memo:                                     map[string]any{workflows.FingerprintMemo: fp},
		TypedSearchAttributes:                    workflows.SearchAttributes(n),
		StaticSummary:                            n.Summary(),
		// When a worker shares this client (onceflow dev), the first
		// workflow task comes back with the start and skips matching.
		EnableEagerStart: true,
	}, workflows.Name, n)
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case err == nil:
		return Started{WorkflowID: run.GetID(), RunID: run.GetRunID(), Key: n.Key}, nil
	case !errors.As(err, &already):
		return Started{}, fmt.Errorf("start notification %q: %w", n.Key, err)
	}
	// Join the existing run if its payload matches. Its memo was written
	// when it started and never changes, so a run that has closed since the
	// start was refused compares the same.
	started := Started{WorkflowID: id, RunID: already.RunId, Key: n.Key}
	existing, err := c.fingerprint(ctx, started)
	if err != nil {
		return Started{}, err
	}
	if existing != "" && existing != fp {
		return Started{}, &onceflow.ConflictError{Key: n.Key}
	}
	return started, nil
}

// checkLedger refuses fp when the ledger holds another fingerprint for key.
// A ledger that cannot be read does not stop the start: it is logged, and
// the deliveries' claims, which read the same record, refuse a conflicting
// payload without sending anything (activities.TypeKeyConflict). Failing
// here instead would make a Redis outage refuse every notification, where
// today it only delays their deliveries.
func (c *Client) checkLedger(ctx context.Context, key, fp string) error {
	lctx, cancel := context.WithTimeout(ctx, ledgerTimeout)
	defer cancel()
	stored, err := c.ledger.Fingerprint(lctx, onceflow.ScopedKey(c.tenant, key))
	switch {
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("start notification %q: %w", key, ctx.Err())
	case err != nil:
		c.log.Warn("Could not read the dedup ledger; starting without its conflict check (the deliveries still refuse a conflicting payload)",
			"key", key, "error", err)
	case stored != "" && stored != fp:
		return &onceflow.ConflictError{Key: key}
	}
	return nil
}

func (c *Client) fingerprint(ctx context.Context, s Started) (string, error) {
	desc, err := c.tc.DescribeWorkflow(ctx, s.WorkflowID, s.RunID)
	if err != nil {
		return "", fmt.Errorf("describe %s: %w", s.WorkflowID, err)
	}
	// Decoded by the client's data converter: with the payload codec, the
	// memo is encrypted like every other payload.
	var fp string
	err = desc.GetMemoValue(workflows.FingerprintMemo, &fp)
	if errors.Is(err, temporal.ErrNoData) {
		// Started by another SDK without Onceflow's memo: nothing to compare.
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read fingerprint of %s: %w", s.WorkflowID, err)
	}
	return fp, nil
}

// Wait blocks until the notification with key has finished and returns its
// result. A cancelled notification returns an error. It serves a
// notification started elsewhere; to wait for one this process sent, WaitRun
// on what Send returned saves a round trip.
func (c *Client) Wait(ctx context.Context, key string) (onceflow.Result, error) {
	// Without a run ID the SDK describes the workflow first to learn it.
	return c.wait(ctx, key, c.workflowID(key), "")
}

// WaitRun blocks until the run that Send returned has finished and returns
// its result, as Wait does. A cancelled run returns an error, even when the
// notification has been sent again since.
func (c *Client) WaitRun(ctx context.Context, s Started) (onceflow.Result, error) {
	key := s.Key
	if key == "" {
		key = s.WorkflowID
	}
	return c.wait(ctx, key, s.WorkflowID, s.RunID)
}

func (c *Client) wait(ctx context.Context, key, workflowID, runID string) (onceflow.Result, error) {
	var res onceflow.Result
	if err := onceflow.ValidateTenant(c.tenant); err != nil {
		return res, err
	}
	err := c.tc.GetWorkflow(ctx, workflowID, runID).Get(ctx, &res)
	if err != nil {
		return res, c.keyError(key, err)
	}
	return res, nil
}

// Status is where a notification stands.
type Status struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	// Execution is the workflow's state: running, completed, canceled,
	// failed, terminated or timed_out.
	Execution string          `json:"execution"`
	Result    onceflow.Result `json:"result"`
}

// Status returns the notification's per-delivery state. Deliveries of a
// running notification whose last attempt failed are reported as retrying,
// with the last error as the reason.
func (c *Client) Status(ctx context.Context, key string) (Status, error) {
	if err := onceflow.ValidateTenant(c.tenant); err != nil {
		return Status{}, err
	}
	desc, err := c.tc.DescribeWorkflowExecution(ctx, c.workflowID(key), "")
	if err != nil {
		return Status{}, c.keyError(key, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	st := Status{
		WorkflowID: info.GetExecution().GetWorkflowId(),
		RunID:      info.GetExecution().GetRunId(),
		Execution:  executionName(info.GetStatus()),
	}
	if info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		err = c.tc.GetWorkflow(ctx, st.WorkflowID, st.RunID).Get(ctx, &st.Result)
		return st, c.keyError(key, err)
	}
	q, err := c.tc.QueryWorkflow(ctx, st.WorkflowID, st.RunID, workflows.StatusQuery)
	if err != nil {
		return st, fmt.Errorf("query %s (%s): %w", st.WorkflowID, st.Execution, err)
	}
	if err := q.Get(&st.Result); err != nil {
		return st, fmt.Errorf("read status of %s: %w", st.WorkflowID, err)
	}
	retrying := make(map[string]string)
	for _, pa := range desc.GetPendingActivities() {
		if pa.GetAttempt() > 1 || pa.GetLastFailure() != nil {
			retrying[pa.GetActivityId()] = pa.GetLastFailure().GetMessage()
		}
	}
	mark := func(dr *onceflow.DeliveryResult, activityID string) {
		if reason, ok := retrying[activityID]; ok && !dr.Status.Final() {
			dr.Status, dr.Reason = onceflow.Retrying, reason
		}
	}
	for i := range st.Result.Deliveries {
		dr := &st.Result.Deliveries[i]
		mark(dr, workflows.ActivityID(dr.DeliveryID, 0))
		for j := range dr.Fallbacks {
			mark(&dr.Fallbacks[j], workflows.ActivityID(dr.DeliveryID, j+1))
		}
	}
	return st, nil
}

// CheckHealth reports whether the Temporal frontend answers.
func (c *Client) CheckHealth(ctx context.Context) error {
	_, err := c.tc.CheckHealth(ctx, &client.CheckHealthRequest{})
	return err
}

// Cancel cancels the notification with key. Deliveries already sent stay
// sent; the others are not sent.
func (c *Client) Cancel(ctx context.Context, key string) error {
	if err := onceflow.ValidateTenant(c.tenant); err != nil {
		return err
	}
	return c.keyError(key, c.tc.CancelWorkflow(ctx, c.workflowID(key), ""))
}

func (c *Client) keyError(key string, err error) error {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return &onceflow.NotFoundError{Kind: "notification", Key: key}
	}
	if err != nil {
		return fmt.Errorf("notification %q: %w", key, err)
	}
	return nil
}

func executionName(s enumspb.WorkflowExecutionStatus) string {
	switch s {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return "running"
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return "completed"
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		return "canceled"
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
		return "failed"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		return "terminated"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return "timed_out"
	case enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
		return "continued_as_new"
	}
	return "unknown"
}
