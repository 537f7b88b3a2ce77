package starter

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/workflows"
)

// What the products built on the notification (broadcast.Client) reuse of
// its client: the Temporal client and task queue, the tenant scope, the
// ledger check and the send-ahead bound, so that a product's client is
// scoped, checked and bounded exactly as Send is.

// Temporal is the Temporal client c starts and follows workflows through.
func (c *Client) Temporal() client.Client { return c.tc }

// TaskQueue is the task queue c starts workflows on.
func (c *Client) TaskQueue() string { return c.taskQueue }

// MaxSendAhead bounds how far ahead a send_at may be (WithMaxSendAhead);
// 0 means onceflow.DefaultMaxSendAhead.
func (c *Client) MaxSendAhead() time.Duration { return c.maxSendAhead }

// Scope sets *tenant, a notification's or a broadcast's, to the client's
// tenant, or refuses another one with a *onceflow.ValidationError: the
// client, not the payload, decides whose it is.
func (c *Client) Scope(tenant *string) error { return c.scopeTenant(tenant) }

// ScopedKey is key in the client's tenant (onceflow.ScopedKey).
func (c *Client) ScopedKey(key string) string { return c.scopedKey(key) }

// CheckLedger refuses fp with a *onceflow.ConflictError naming key when
// the dedup ledger (WithLedger) holds another fingerprint under
// ledgerKey, a key already in the client's tenant. Without a ledger, or
// when it cannot be read (logged), it refuses nothing: the deliveries'
// claims read the same record and refuse a conflicting payload without
// sending anything.
func (c *Client) CheckLedger(ctx context.Context, key, ledgerKey, fp string) error {
	if c.ledger == nil {
		return nil
	}
	lctx, cancel := context.WithTimeout(ctx, ledgerTimeout)
	defer cancel()
	stored, err := c.ledger.Fingerprint(lctx, ledgerKey)
	switch {
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("start %q: %w", key, ctx.Err())
	case err != nil:
		// Failing here instead would make a Redis outage refuse every
		// start, where today it only delays their deliveries.
		c.log.Warn("Could not read the dedup ledger; starting without its conflict check (the deliveries still refuse a conflicting payload)",
			"key", key, "error", err)
	case stored != "" && stored != fp:
		return &onceflow.ConflictError{Key: key}
	}
	return nil
}

// Fingerprint is the payload fingerprint that the run's starter recorded
// in its memo, or "" when it recorded none (a run started by another SDK
// without Onceflow's memo: nothing to compare). The memo is written when
// the run starts and never changes, so a run that has closed since
// compares the same.
func (c *Client) Fingerprint(ctx context.Context, workflowID, runID string) (string, error) {
	desc, err := c.tc.DescribeWorkflow(ctx, workflowID, runID)
	if err != nil {
		return "", fmt.Errorf("describe %s: %w", workflowID, err)
	}
	// Decoded by the client's data converter: with the payload codec, the
	// memo is encrypted like every other payload.
	var fp string
	if err := desc.GetMemoValue(workflows.FingerprintMemo, &fp); err != nil && !errors.Is(err, temporal.ErrNoData) {
		return "", fmt.Errorf("read the fingerprint of %s: %w", workflowID, err)
	}
	return fp, nil
}

// ExecutionName is the name a status gives a workflow's state: running,
// completed, cancelled, failed, terminated, timed_out, continued_as_new.
func ExecutionName(s enumspb.WorkflowExecutionStatus) string {
	switch s {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return "running"
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return "completed"
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		return "cancelled"
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
