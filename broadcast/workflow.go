// Package broadcast is the broadcast product: one message to many
// recipients, each delivered effectively once through the delivery core.
// It holds the broadcast's workflow (BroadcastWorkflow) and its contract,
// the DeliverChunk activity, and its recipient lists (recipients/). Its
// client methods and HTTP routes are still starter.Client's and httpapi's.
package broadcast

// BroadcastWorkflow is the whole lifecycle of one broadcast: wait for
// send_at on a durable timer, then deliver its recipients chunk by chunk,
// a few chunks at a time, each chunk one DeliverChunk activity that sends
// every recipient through the same claim, send and commit as a
// notification's delivery.
//
// Its history grows by chunk, not by recipient: the list lives in Redis
// (package recipients), the input names it by key and fingerprint, and a
// chunk's activity returns five counts. A chunk costs at most about seven
// events whatever its size and its retries (its activity's scheduled,
// started and completed, and the workflow task that follows;
// testdata/broadcast has 25 events for 3 chunks, 43 for 6), so 100,000
// recipients in chunks of 1,000 make about 500 events and 100 KB
// (BenchmarkBroadcastHistory100k), against Temporal's limits of 51,200
// events and 50 MB: no continue-as-new or child workflows are needed.

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/activities"
	"github.com/onceflow/onceflow/broadcast/recipients"
	"github.com/onceflow/onceflow/metrics"
	"github.com/onceflow/onceflow/workflows"
)

const (
	// WorkflowName is the broadcast workflow's type.
	WorkflowName = "BroadcastWorkflow"
	// TypeInvalid is the failure type of a broadcast whose input
	// fails validation inside the workflow.
	TypeInvalid = "InvalidBroadcast"
	// MaxChunkSize and MaxParallelChunks bound a broadcast's input.
	MaxChunkSize      = 10_000
	MaxParallelChunks = 64
	// chunkHeartbeat is how long a chunk's worker may go silent before
	// another takes the chunk over. DeliverChunk heartbeats every second.
	chunkHeartbeat = 10 * time.Second
)

// WorkflowID is the workflow ID of the broadcast with the scoped key.
func WorkflowID(scopedKey string) string { return "broadcast/" + scopedKey }

// Input is what a broadcast's workflow receives: its recipient
// list is in Redis under List.
type Input struct {
	Key     string           `json:"key"`
	Tenant  string           `json:"tenant,omitempty"`
	Channel onceflow.Channel `json:"channel"`
	// Total is how many recipients the list holds, in chunks of ChunkSize;
	// Parallel chunks are delivered at once.
	Total       int        `json:"total"`
	ChunkSize   int        `json:"chunk_size"`
	Parallel    int        `json:"parallel"`
	Fingerprint string     `json:"fingerprint"`
	SendAt      *time.Time `json:"send_at,omitempty"`
}

// List names the recipient list of the broadcast.
func (in Input) List() recipients.List {
	return recipients.List{Key: onceflow.ScopedKey(in.Tenant, in.Key), Fingerprint: in.Fingerprint}
}

func (in Input) chunks() int { return (in.Total + in.ChunkSize - 1) / in.ChunkSize }

// chunkLen is how many recipients chunk i holds.
func (in Input) chunkLen(i int) int { return min(in.ChunkSize, in.Total-i*in.ChunkSize) }

func (in Input) validate() error {
	switch {
	case in.Total < 1 || in.Total > onceflow.MaxRecipients:
		return fmt.Errorf("total %d is not between 1 and %d", in.Total, onceflow.MaxRecipients)
	case in.ChunkSize < 1 || in.ChunkSize > MaxChunkSize:
		return fmt.Errorf("chunk_size %d is not between 1 and %d", in.ChunkSize, MaxChunkSize)
	case in.Parallel < 1 || in.Parallel > MaxParallelChunks:
		return fmt.Errorf("parallel %d is not between 1 and %d", in.Parallel, MaxParallelChunks)
	case len(in.Fingerprint) != 64:
		return fmt.Errorf("fingerprint %q is not a SHA-256 in hex", in.Fingerprint)
	}
	switch in.Channel {
	case onceflow.Webhook, onceflow.Email, onceflow.SMS, onceflow.Push, onceflow.Chat:
	default:
		return fmt.Errorf("channel %q is not one of webhook, email, sms, push, chat", in.Channel)
	}
	return onceflow.ValidateKey(in.Key)
}

// SearchAttributes are a broadcast's attributes at its start: the
// notification's attributes, with the broadcast's one channel.
func SearchAttributes(b onceflow.Broadcast) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(broadcastAttributes(b.Key, b.Channel)...)
}

func broadcastAttributes(key string, ch onceflow.Channel) []temporal.SearchAttributeUpdate {
	return []temporal.SearchAttributeUpdate{
		workflows.KeyAttribute.ValueSet(key),
		workflows.ChannelsAttribute.ValueSet([]string{string(ch)}),
		workflows.StatusAttribute.ValueSet(string(onceflow.Pending)),
	}
}

// Workflow runs broadcasts under a policy (the notification's: attempt
// timeout, retries, give-up). Register its Run as WorkflowName.
type Workflow struct {
	policy workflows.Policy
}

// NewWorkflow returns the broadcast workflow under p; zero fields take
// workflows.DefaultPolicy's values.
func NewWorkflow(p workflows.Policy) *Workflow {
	return &Workflow{policy: p.WithDefaults()}
}

// Run is BroadcastWorkflow. It fails only on an invalid input, and ends
// cancelled when cancelled; its result and its status query count the
// recipients in each state.
func (w *Workflow) Run(ctx workflow.Context, in Input) (onceflow.BroadcastResult, error) {
	var invalid string
	if err := workflow.SideEffect(ctx, func(workflow.Context) any {
		if err := in.validate(); err != nil {
			return err.Error()
		}
		return ""
	}).Get(&invalid); err != nil {
		panic(fmt.Sprintf("read the recorded validation verdict: %v", err))
	}
	if invalid != "" {
		return onceflow.BroadcastResult{}, temporal.NewNonRetryableApplicationError("invalid broadcast: "+invalid, TypeInvalid, nil)
	}
	b := &broadcast{policy: w.policy, in: in, result: onceflow.BroadcastResult{
		Key: in.Key, SendAt: in.SendAt, Total: in.Total, Pending: in.Total, Chunks: in.chunks(),
	}}
	if _, ok := workflow.GetTypedSearchAttributes(ctx).GetKeyword(workflows.KeyAttribute); !ok {
		if err := workflow.UpsertTypedSearchAttributes(ctx, broadcastAttributes(in.Key, in.Channel)...); err != nil {
			return b.result, err
		}
	}
	if err := workflow.SetQueryHandler(ctx, workflows.StatusQuery, func() (onceflow.BroadcastResult, error) {
		return b.result, nil
	}); err != nil {
		return b.result, err
	}
	return b.run(ctx)
}

// broadcast is one run's state; the status query reads it.
type broadcast struct {
	policy workflows.Policy
	in     Input
	result onceflow.BroadcastResult
}

func (b *broadcast) run(ctx workflow.Context) (onceflow.BroadcastResult, error) {
	workflow.SetCurrentDetails(ctx, b.result.Progress())
	if b.in.SendAt != nil {
		if wait := b.in.SendAt.Sub(workflow.Now(ctx)); wait > 0 {
			if err := workflow.Sleep(ctx, wait); err != nil {
				b.cancelRest(ctx, 0)
				return b.result, errors.Join(err, b.publish(ctx))
			}
		}
	}
	due := workflow.Now(ctx)
	sel := workflow.NewSelector(ctx)
	next, running := 0, 0
	for {
		for running < b.in.Parallel && next < b.result.Chunks && ctx.Err() == nil {
			i := next
			next++
			running++
			f := b.deliverChunk(ctx, i, due)
			sel.AddFuture(f, func(f workflow.Future) {
				running--
				b.settle(ctx, i, f)
				workflow.SetCurrentDetails(ctx, b.result.Progress())
			})
		}
		if running == 0 {
			break
		}
		sel.Select(ctx)
	}
	if ctx.Err() != nil {
		b.cancelRest(ctx, next)
		return b.result, errors.Join(temporal.NewCanceledError(), b.publish(ctx))
	}
	return b.result, b.publish(ctx)
}

func (b *broadcast) deliverChunk(ctx workflow.Context, i int, due time.Time) workflow.Future {
	var a *Activities
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ActivityID: fmt.Sprintf("chunk-%d", i),
		Summary:    fmt.Sprintf("chunk %d of %d: %d %s recipients", i+1, b.result.Chunks, b.in.chunkLen(i), b.in.Channel),
		// An attempt may take as long as the retries may; a dead worker is
		// found by its missing heartbeats well before.
		StartToCloseTimeout:    b.policy.GiveUpAfter,
		ScheduleToCloseTimeout: 2 * b.policy.GiveUpAfter,
		HeartbeatTimeout:       chunkHeartbeat,
		// A cancelled chunk reports what its in-flight sends did.
		WaitForCancellation: true,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        b.policy.FirstRetry,
			BackoffCoefficient:     2,
			MaximumInterval:        b.policy.MaxRetryInterval,
			NonRetryableErrorTypes: []string{TypeListMissing},
		},
	})
	return workflow.ExecuteActivity(actx, a.DeliverChunk, ChunkInput{
		Key: b.in.Key, List: b.in.List(), Chunk: i, Timestamp: due,
		RecipientTimeout: b.policy.AttemptTimeout,
		GiveUpAt:         workflow.Now(ctx).Add(b.policy.GiveUpAfter),
	})
}

// settle counts chunk i's outcome.
func (b *broadcast) settle(ctx workflow.Context, i int, f workflow.Future) {
	defer b.count(ctx, b.result)
	n := b.in.chunkLen(i)
	b.result.Pending -= n
	b.result.ChunksDone++
	var out ChunkOutput
	err := f.Get(ctx, &out)
	var (
		appErr  *temporal.ApplicationError
		details activities.FailureDetails
	)
	switch {
	case err == nil:
		b.result.Delivered += out.Delivered
		b.result.Suppressed += out.Suppressed
		b.result.Failed += out.Failed
		b.result.Ambiguous += out.Ambiguous
		b.result.Cancelled += out.Cancelled
	case temporal.IsCanceledError(err):
		// Cancelled before it started: nothing of it was sent. (Once
		// started, DeliverChunk reports a cancellation with its counts.)
		b.result.Cancelled += n
	case errors.As(err, &appErr) && appErr.Type() == TypeListMissing && appErr.Details(&details) == nil && !details.MaybeSent:
		b.result.Failed += n
		b.result.Notes = append(b.result.Notes, fmt.Sprintf("chunk %d (%d recipients) failed before sending anything: %s", i+1, n, appErr.Message()))
	default:
		b.result.Ambiguous += n
		b.result.Notes = append(b.result.Notes, fmt.Sprintf("chunk %d (%d recipients) ended without reporting what it sent, some may have been: %s", i+1, n, err.Error()))
	}
}

// cancelRest counts the chunks from next on, never started, as cancelled.
func (b *broadcast) cancelRest(ctx workflow.Context, next int) {
	defer b.count(ctx, b.result)
	for i := next; i < b.result.Chunks; i++ {
		n := b.in.chunkLen(i)
		b.result.Cancelled += n
		b.result.Pending -= n
	}
}

// count adds to onceflow_deliveries_total the recipients settled since
// the result was before; the workflow's metrics handler drops what a
// replay emits.
func (b *broadcast) count(ctx workflow.Context, before onceflow.BroadcastResult) {
	h := workflow.GetMetricsHandler(ctx)
	metrics.Deliveries(h, b.in.Channel, onceflow.Delivered, b.result.Delivered-before.Delivered)
	metrics.Deliveries(h, b.in.Channel, onceflow.Suppressed, b.result.Suppressed-before.Suppressed)
	metrics.Deliveries(h, b.in.Channel, onceflow.Failed, b.result.Failed-before.Failed)
	metrics.Deliveries(h, b.in.Channel, onceflow.Ambiguous, b.result.Ambiguous-before.Ambiguous)
	metrics.Deliveries(h, b.in.Channel, onceflow.Cancelled, b.result.Cancelled-before.Cancelled)
}

// publish keeps the OnceflowStatus search attribute current.
func (b *broadcast) publish(ctx workflow.Context) error {
	workflow.SetCurrentDetails(ctx, b.result.Progress())
	status := string(b.result.Status())
	if current, _ := workflow.GetTypedSearchAttributes(ctx).GetKeyword(workflows.StatusAttribute); current == status {
		return nil
	}
	return workflow.UpsertTypedSearchAttributes(ctx, workflows.StatusAttribute.ValueSet(status))
}
