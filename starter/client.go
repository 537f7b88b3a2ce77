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
	if err := c.CheckLedger(ctx, n.Key, c.scopedKey(n.Key), fp); err != nil {
		return Started{}, err
	}
	id := c.workflowID(n.Key)
	run, err := c.start(ctx, id, n, fp)
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
	existing, err := c.Fingerprint(ctx, started.WorkflowID, started.RunID)
	if err != nil {
		return Started{}, err
	}
	if existing != "" && existing != fp {
		return Started{}, &onceflow.ConflictError{Key: n.Key}
	}
	return started, nil
}

// startRetryMax caps the wait between two tries of a start whose call
// timed out.
const startRetryMax = 2 * time.Second

// start starts the workflow that carries n as id. The SDK bounds each call
// to the frontend by 10 seconds whatever ctx allows, and CI's race pass saw
// a start among 60 concurrent ones outlast that bound on a loaded machine
// ("context deadline exceeded" 13 s into a 2-minute context). Such a start
// may or may not have reached the server, so it is tried again while ctx
// lives: the workflow ID makes the start idempotent, and a try that finds
// the first one's run fails as already started, which Send then joins by
// its fingerprint.
func (c *Client) start(ctx context.Context, id string, n onceflow.Notification, fp string) (client.WorkflowRun, error) {
	wait := 100 * time.Millisecond
	for {
		run, err := c.startOnce(ctx, id, n, fp)
		if err == nil || ctx.Err() != nil || !callTimedOut(err) {
			return run, err
		}
		c.log.Warn("A notification's start timed out before the server answered; trying again", "workflow_id", id, "error", err)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		wait = min(2*wait, startRetryMax)
	}
}

// callTimedOut reports whether err is a call to the Temporal frontend that
// ran out of its own time.
func callTimedOut(err error) bool {
	var timedOut *serviceerror.DeadlineExceeded
	return errors.As(err, &timedOut) || errors.Is(err, context.DeadlineExceeded)
}

func (c *Client) startOnce(ctx context.Context, id string, n onceflow.Notification, fp string) (client.WorkflowRun, error) {
	return c.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
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
	// Execution is the workflow's state: running, completed, cancelled,
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
		Execution:  ExecutionName(info.GetStatus()),
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
