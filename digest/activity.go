package digest

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// TypeRefused is the failure type of a JoinDigest that Temporal refused
// as invalid; retrying cannot help.
const TypeRefused = "DigestRefused"

// Signaler is how JoinDigest reaches a digest's workflow: the worker's
// Temporal client.
type Signaler interface {
	SignalWithStartWorkflow(ctx context.Context, workflowID string, signalName string, signalArg any,
		options client.StartWorkflowOptions, workflow any, workflowArgs ...any) (client.WorkflowRun, error)
}

// Activities holds the digest's activity. Register a *Activities with a
// worker.
type Activities struct{ temporal Signaler }

// NewActivities returns the digest's activities on the worker's Temporal
// client.
func NewActivities(tc Signaler) *Activities { return &Activities{temporal: tc} }

// JoinInput is one event to put in its digest.
type JoinInput struct {
	// WorkflowID names the digest's workflow (ID).
	WorkflowID string `json:"workflow_id"`
	// WorkflowType and Signal are WorkflowName and EventSignal. JoinDigest
	// uses the constants; the notification still records them for the
	// workers of earlier releases that read them during a rolling deploy.
	WorkflowType string `json:"workflow_type"`
	Signal       string `json:"signal"`
	// Start is the digest workflow's input, should this event start it.
	Start Start  `json:"start"`
	Event Signal `json:"event"`
}

// JoinDigest signals the event to its digest's workflow, starting the
// workflow when none runs (signal-with-start), on the task queue this
// activity runs on. Temporal keeps one running workflow per digest, so
// events a millisecond apart land in the same one. A retried attempt may
// signal the same event twice; the digest drops repeats by key.
func (a *Activities) JoinDigest(ctx context.Context, in JoinInput) error {
	_, err := a.temporal.SignalWithStartWorkflow(ctx, in.WorkflowID, EventSignal, in.Event, client.StartWorkflowOptions{
		ID:            in.WorkflowID,
		TaskQueue:     activity.GetInfo(ctx).TaskQueue,
		StaticSummary: fmt.Sprintf("digest %s for subscriber %s", in.Start.Key, in.Start.Subscriber),
	}, WorkflowName, in.Start)
	var invalid *serviceerror.InvalidArgument
	switch {
	case errors.As(err, &invalid):
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("signal-with-start digest %s: %v", in.WorkflowID, err), TypeRefused, nil)
	case err != nil:
		// Temporal unreachable or busy: retried.
		return fmt.Errorf("signal-with-start digest %s: %w", in.WorkflowID, err)
	}
	return nil
}
