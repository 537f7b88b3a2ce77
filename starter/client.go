// Package starter is the Go client applications use to send notifications
// and follow them: Send, Wait, Status and Cancel, all by idempotency key.
package starter

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/workflows"
)

// fingerprintMemo is the memo field that holds the payload's fingerprint.
const fingerprintMemo = "onceflow_fingerprint"

// Client starts and follows notifications through a Temporal client.
type Client struct {
	tc        client.Client
	taskQueue string
}

// New returns a Client that starts notifications on taskQueue (empty means
// workflows.DefaultTaskQueue).
func New(tc client.Client, taskQueue string) *Client {
	if taskQueue == "" {
		taskQueue = workflows.DefaultTaskQueue
	}
	return &Client{tc: tc, taskQueue: taskQueue}
}

// Started identifies the workflow run that carries a notification.
type Started struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
}

// NotFoundError says no notification has the key.
type NotFoundError struct{ Key string }

func (e *NotFoundError) Error() string { return fmt.Sprintf("no notification with key %q", e.Key) }

// Send starts n, or joins the notification already started with its key:
// a running one, or one that completed. A notification that was cancelled
// or failed is started again. The same key with a different payload is a
// *onceflow.ConflictError, and an invalid n a *onceflow.ValidationError;
// neither starts anything.
func (c *Client) Send(ctx context.Context, n onceflow.Notification) (Started, error) {
	if err := n.Validate(); err != nil {
		return Started{}, err
	}
	fp := n.Fingerprint()
	run, err := c.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       workflows.ID(n.Key),
		TaskQueue:                c.taskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		Memo:                     map[string]any{fingerprintMemo: fp},
		TypedSearchAttributes:    workflows.SearchAttributes(n),
		StaticSummary:            n.Summary(),
		// When a worker shares this client (onceflow dev), the first
		// workflow task comes back with the start and skips matching.
		EnableEagerStart: true,
	}, workflows.Name, n)
	if err != nil {
		return Started{}, fmt.Errorf("start notification %q: %w", n.Key, err)
	}
	started := Started{WorkflowID: run.GetID(), RunID: run.GetRunID()}
	// The start may have joined an existing run; its payload must match.
	existing, err := c.fingerprint(ctx, started)
	if err != nil {
		return Started{}, err
	}
	if existing != "" && existing != fp {
		return Started{}, &onceflow.ConflictError{Key: n.Key}
	}
	return started, nil
}

func (c *Client) fingerprint(ctx context.Context, s Started) (string, error) {
	desc, err := c.tc.DescribeWorkflow(ctx, s.WorkflowID, s.RunID)
	if err != nil {
		return "", fmt.Errorf("describe %s: %w", s.WorkflowID, err)
	}
	// Decoded by the client's data converter: with the payload codec, the
	// memo is encrypted like every other payload.
	var fp string
	err = desc.GetMemoValue(fingerprintMemo, &fp)
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
// result. A cancelled notification returns an error.
func (c *Client) Wait(ctx context.Context, key string) (onceflow.Result, error) {
	var res onceflow.Result
	err := c.tc.GetWorkflow(ctx, workflows.ID(key), "").Get(ctx, &res)
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
	desc, err := c.tc.DescribeWorkflowExecution(ctx, workflows.ID(key), "")
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
	return c.keyError(key, c.tc.CancelWorkflow(ctx, workflows.ID(key), ""))
}

func (c *Client) keyError(key string, err error) error {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return &NotFoundError{Key: key}
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
