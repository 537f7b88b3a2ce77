package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/onceflow/onceflow"
)

// Failure types of JoinDigest that retrying cannot help.
const (
	// TypeNoDigests: the worker has no Temporal client to reach digests
	// with.
	TypeNoDigests = "NoDigests"
	// TypeDigestRefused: Temporal refused the signal-with-start as
	// invalid.
	TypeDigestRefused = "DigestRefused"
)

// DigestSignaler is how JoinDigest reaches a digest's workflow: the
// worker's Temporal client.
type DigestSignaler interface {
	SignalWithStartWorkflow(ctx context.Context, workflowID string, signalName string, signalArg any,
		options client.StartWorkflowOptions, workflow any, workflowArgs ...any) (client.WorkflowRun, error)
}

// DigestSignal is one event as its digest's workflow receives it: what the
// notification that carried it says about the digest's content.
type DigestSignal struct {
	// Event is the notification's key, without its tenant's scope, and
	// its data.
	Event onceflow.DigestEvent `json:"event"`
	// Window is the notification's digest window; the window a digest
	// waits is its first event's.
	Window string `json:"window"`
	// Template, Category and Deliveries are the notification's: a digest
	// is rendered with its first event's template and category, and sent
	// to every distinct delivery of its events.
	Template   string              `json:"template"`
	Category   string              `json:"category,omitempty"`
	Deliveries []onceflow.Delivery `json:"deliveries"`
}

// DigestStart is a digest workflow's input: whose digest it is and what a
// run passes to the next (workflows.DigestWorkflow).
type DigestStart struct {
	Tenant     string `json:"tenant,omitempty"`
	Subscriber string `json:"subscriber"`
	Key        string `json:"key"`
	// Carry holds the events that reached the previous run after its
	// digest had been rendered: they open this run's window.
	Carry []DigestSignal `json:"carry,omitempty"`
	// Recent maps the keys of events sent in recent digests to when they
	// were sent: a JoinDigest attempt retried after its signal landed
	// would otherwise put an event in a second digest.
	Recent map[string]time.Time `json:"recent,omitempty"`
}

// JoinDigestInput is one event to put in its digest.
type JoinDigestInput struct {
	// WorkflowID, WorkflowType and Signal name the digest's workflow and
	// the signal that carries an event to it (package workflows).
	WorkflowID   string `json:"workflow_id"`
	WorkflowType string `json:"workflow_type"`
	Signal       string `json:"signal"`
	// Start is the digest workflow's input, should this event start it.
	Start DigestStart  `json:"start"`
	Event DigestSignal `json:"event"`
}

// JoinDigest signals the event to its digest's workflow, starting the
// workflow when none runs (signal-with-start), on the task queue this
// activity runs on. Temporal keeps one running workflow per digest, so
// events a millisecond apart land in the same one. A retried attempt may
// signal the same event twice; the digest drops repeats by key.
func (a *Activities) JoinDigest(ctx context.Context, in JoinDigestInput) error {
	if a.Digests == nil {
		return temporal.NewNonRetryableApplicationError("this worker has no Temporal client for digests (activities.Activities.Digests)", TypeNoDigests, nil)
	}
	_, err := a.Digests.SignalWithStartWorkflow(ctx, in.WorkflowID, in.Signal, in.Event, client.StartWorkflowOptions{
		ID:            in.WorkflowID,
		TaskQueue:     activity.GetInfo(ctx).TaskQueue,
		StaticSummary: fmt.Sprintf("digest %s for subscriber %s", in.Start.Key, in.Start.Subscriber),
	}, in.WorkflowType, in.Start)
	var invalid *serviceerror.InvalidArgument
	switch {
	case errors.As(err, &invalid):
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("signal-with-start digest %s: %v", in.WorkflowID, err), TypeDigestRefused, nil)
	case err != nil:
		// Temporal unreachable or busy: retried.
		return fmt.Errorf("signal-with-start digest %s: %w", in.WorkflowID, err)
	}
	return nil
}
