package starter

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/broadcast"
	"github.com/onceflow/onceflow/broadcast/recipients"
	"github.com/onceflow/onceflow/workflows"
)

// RecipientStore keeps broadcasts' recipient lists and their recipients'
// problems (recipients.Store).
type RecipientStore interface {
	Put(ctx context.Context, l recipients.List, b onceflow.Broadcast, chunkSize int, ttl time.Duration) error
	Problems(ctx context.Context, l recipients.List, cursor, limit int) ([]recipients.Problem, int, error)
}

// Broadcast defaults. A chunk of 1,000 recipients is one activity of three
// history events; four at a time, each 32 in flight (the worker's
// broadcast.DefaultChunkInFlight), keep a local receiver and Redis busy
// without a chunk's heartbeat details growing past a few kilobytes.
const (
	DefaultChunkSize      = 1000
	DefaultParallelChunks = 4
)

// broadcasts is how a Client starts broadcasts.
type broadcasts struct {
	store RecipientStore
	// keep is how long recipient lists are kept past send_at: the dedup
	// window, so that a list outlives its recipients' dedup records.
	keep      time.Duration
	chunkSize int
	parallel  int
}

// WithRecipientStore lets the Client start broadcasts: it stores their
// recipient lists in s for keep past their send_at (give the workers'
// dedup window, ONCEFLOW_DEDUP_WINDOW), and reads their problems there.
func WithRecipientStore(s RecipientStore, keep time.Duration) Option {
	return func(c *Client) {
		c.broadcasts = broadcasts{store: s, keep: keep, chunkSize: DefaultChunkSize, parallel: DefaultParallelChunks}
	}
}

// WithChunks sets the chunk size and how many chunks a broadcast delivers
// at once (defaults DefaultChunkSize and DefaultParallelChunks); set it
// after WithRecipientStore.
func WithChunks(size, parallel int) Option {
	return func(c *Client) {
		c.broadcasts.chunkSize, c.broadcasts.parallel = size, parallel
	}
}

// ErrNoRecipientStore says the Client was built without
// WithRecipientStore, so it cannot start or page broadcasts.
var ErrNoRecipientStore = errors.New("broadcasts need Redis for their recipient lists; set REDIS_URL (starter.WithRecipientStore)")

// SendBroadcast starts b, or joins the broadcast already started with its
// key (running or completed), exactly as Send does a notification: the
// same key with another payload is a *onceflow.ConflictError, an invalid
// b a *onceflow.ValidationError, and neither starts anything. The
// recipients go to the RecipientStore, not to Temporal; a join stores
// nothing.
func (c *Client) SendBroadcast(ctx context.Context, b onceflow.Broadcast) (Started, error) {
	if err := c.scopeTenant(&b.Tenant); err != nil {
		return Started{}, err
	}
	if err := b.Validate(); err != nil {
		return Started{}, err
	}
	if err := b.ValidateSendAt(time.Now(), c.maxSendAhead); err != nil {
		return Started{}, err
	}
	if c.broadcasts.store == nil {
		return Started{}, ErrNoRecipientStore
	}
	fp := b.Fingerprint()
	scoped := b.ScopedKey()
	id := broadcast.WorkflowID(scoped)
	existing, joined, err := c.existingBroadcast(ctx, b.Key, id, fp)
	if err != nil || joined {
		return existing, err
	}
	if c.ledger != nil {
		if err := c.checkLedger(ctx, onceflow.BroadcastLedgerKey(scoped), fp); err != nil {
			var conflict *onceflow.ConflictError
			if errors.As(err, &conflict) {
				return Started{}, &onceflow.ConflictError{Key: b.Key}
			}
			return Started{}, err
		}
	}
	in := broadcast.Input{
		Key: b.Key, Tenant: b.Tenant, Channel: b.Channel, Total: len(b.Recipients),
		ChunkSize: c.broadcasts.chunkSize, Parallel: c.broadcasts.parallel, Fingerprint: fp, SendAt: b.SendAt,
	}
	keep := c.broadcasts.keep
	if b.SendAt != nil {
		keep += max(0, time.Until(*b.SendAt))
	}
	if err := c.broadcasts.store.Put(ctx, in.List(), b, in.ChunkSize, keep); err != nil {
		return Started{}, fmt.Errorf("start broadcast %q: %w", b.Key, err)
	}
	run, err := c.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                c.taskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		Memo:                     map[string]any{workflows.FingerprintMemo: fp},
		TypedSearchAttributes:    broadcast.SearchAttributes(b),
		StaticSummary:            b.Summary(),
	}, broadcast.WorkflowName, in)
	if err != nil {
		return Started{}, fmt.Errorf("start broadcast %q: %w", b.Key, err)
	}
	started := Started{WorkflowID: run.GetID(), RunID: run.GetRunID()}
	// Another start may have come first with another payload.
	got, err := c.memoFingerprint(ctx, started.WorkflowID, started.RunID)
	if err != nil {
		return Started{}, err
	}
	if got != "" && got != fp {
		return Started{}, &onceflow.ConflictError{Key: b.Key}
	}
	return started, nil
}

// existingBroadcast looks for a run that a start of id would join: a
// running or completed one. joined reports that there is one with the
// same payload; another payload is a conflict.
func (c *Client) existingBroadcast(ctx context.Context, key, id, fp string) (Started, bool, error) {
	desc, err := c.tc.DescribeWorkflow(ctx, id, "")
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return Started{}, false, nil
	case err != nil:
		return Started{}, false, fmt.Errorf("look up broadcast %q: %w", key, err)
	}
	if desc.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && desc.Status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		return Started{}, false, nil
	}
	var got string
	if err := desc.GetMemoValue(workflows.FingerprintMemo, &got); err != nil && !errors.Is(err, temporal.ErrNoData) {
		return Started{}, false, fmt.Errorf("read the fingerprint of %s: %w", id, err)
	}
	if got != "" && got != fp {
		return Started{}, false, &onceflow.ConflictError{Key: key}
	}
	// The same payload, or a run started by another SDK without Onceflow's
	// memo: nothing to compare, as Send does.
	return Started{WorkflowID: desc.WorkflowExecution.ID, RunID: desc.WorkflowExecution.RunID}, true, nil
}

// memoFingerprint is the payload fingerprint the run's starter recorded,
// or "" when it recorded none (a run started by another SDK).
func (c *Client) memoFingerprint(ctx context.Context, id, runID string) (string, error) {
	desc, err := c.tc.DescribeWorkflow(ctx, id, runID)
	if err != nil {
		return "", fmt.Errorf("describe %s: %w", id, err)
	}
	var fp string
	if err := desc.GetMemoValue(workflows.FingerprintMemo, &fp); err != nil && !errors.Is(err, temporal.ErrNoData) {
		return "", fmt.Errorf("read the fingerprint of %s: %w", id, err)
	}
	return fp, nil
}

// BroadcastStatus is where a broadcast stands: its counts and one page of
// its failed and ambiguous recipients.
type BroadcastStatus struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	// Execution is the workflow's state, as in Status.
	Execution string          `json:"execution"`
	Status    onceflow.Status `json:"status"`
	onceflow.BroadcastResult
	// Problems are failed and ambiguous recipients in the broadcast's
	// order, from the page's cursor on; NextCursor continues the list, or
	// is 0 at its end.
	Problems   []recipients.Problem `json:"problems"`
	NextCursor int                  `json:"next_cursor,omitempty"`
}

// Page selects problems: Limit of them from recipient index Cursor on.
type Page struct {
	Cursor int
	Limit  int
}

// MaxPage bounds a page of problems; a Limit of 0 means DefaultPage.
const (
	DefaultPage = 100
	MaxPage     = 1000
)

// BroadcastStatus returns the broadcast's counts and a page of its
// problems. A running broadcast's counts move as its chunks settle. Like
// WaitBroadcast and CancelBroadcast, it finds only the client's tenant's
// broadcast with key (ForTenant).
func (c *Client) BroadcastStatus(ctx context.Context, key string, page Page) (BroadcastStatus, error) {
	if page.Limit <= 0 {
		page.Limit = DefaultPage
	}
	page.Limit = min(page.Limit, MaxPage)
	id := broadcast.WorkflowID(c.scopedKey(key))
	desc, err := c.tc.DescribeWorkflow(ctx, id, "")
	if err != nil {
		return BroadcastStatus{}, broadcastKeyError(key, err)
	}
	st := BroadcastStatus{WorkflowID: desc.WorkflowExecution.ID, RunID: desc.WorkflowExecution.RunID, Execution: executionName(desc.Status)}
	if desc.Status == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		err = c.tc.GetWorkflow(ctx, st.WorkflowID, st.RunID).Get(ctx, &st.BroadcastResult)
	} else {
		var q interface{ Get(valuePtr any) error }
		if q, err = c.tc.QueryWorkflow(ctx, st.WorkflowID, st.RunID, workflows.StatusQuery); err == nil {
			err = q.Get(&st.BroadcastResult)
		}
	}
	if err != nil {
		return st, fmt.Errorf("read the status of %s (%s): %w", st.WorkflowID, st.Execution, err)
	}
	st.Status = st.BroadcastResult.Status()
	if st.Failed+st.Ambiguous == 0 {
		st.Problems = []recipients.Problem{}
		return st, nil
	}
	if c.broadcasts.store == nil {
		return st, ErrNoRecipientStore
	}
	var fp string
	if err := desc.GetMemoValue(workflows.FingerprintMemo, &fp); err != nil {
		return st, fmt.Errorf("read the fingerprint of %s: %w", id, err)
	}
	st.Problems, st.NextCursor, err = c.broadcasts.store.Problems(ctx, recipients.List{Key: c.scopedKey(key), Fingerprint: fp}, page.Cursor, page.Limit)
	if st.Problems == nil {
		st.Problems = []recipients.Problem{}
	}
	return st, err
}

// WaitBroadcast polls the broadcast every interval until its workflow has
// closed, calling progress (when not nil) with each status, and returns
// the last. A cancelled broadcast is returned without an error: its
// counts say what was sent.
func (c *Client) WaitBroadcast(ctx context.Context, key string, interval time.Duration, progress func(BroadcastStatus)) (BroadcastStatus, error) {
	for {
		st, err := c.BroadcastStatus(ctx, key, Page{})
		if err != nil {
			return st, err
		}
		if progress != nil {
			progress(st)
		}
		if st.Execution != "running" {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// CancelBroadcast cancels the broadcast: chunks not started are not sent,
// and a chunk in progress stops starting sends once its worker hears of it
// (within about ten seconds). What was sent stays sent.
func (c *Client) CancelBroadcast(ctx context.Context, key string) error {
	return broadcastKeyError(key, c.tc.CancelWorkflow(ctx, broadcast.WorkflowID(c.scopedKey(key)), ""))
}

func broadcastKeyError(key string, err error) error {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return &onceflow.NotFoundError{Kind: "broadcast", Key: key}
	}
	if err != nil {
		return fmt.Errorf("broadcast %q: %w", key, err)
	}
	return nil
}
