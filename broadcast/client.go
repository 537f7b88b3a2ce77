package broadcast

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/broadcast/recipients"
	"github.com/onceflow/onceflow/starter"
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

// Client starts and follows broadcasts within one tenant (ForTenant). It
// is built on the notification's client, whose Temporal client, task
// queue, tenant, ledger and send-ahead bound it uses, so that a broadcast
// is scoped and checked as a notification is.
type Client struct {
	notifications *starter.Client
	store         RecipientStore
	// keep is how long recipient lists are kept past send_at: the dedup
	// window, so that a list outlives its recipients' dedup records.
	keep      time.Duration
	chunkSize int
	parallel  int
}

// NewClient returns a Client that starts broadcasts through notifications,
// stores their recipient lists in store for keep past their send_at (give
// the workers' dedup window, ONCEFLOW_DEDUP_WINDOW) and reads their
// problems there.
func NewClient(notifications *starter.Client, store RecipientStore, keep time.Duration) *Client {
	return &Client{notifications: notifications, store: store, keep: keep, chunkSize: DefaultChunkSize, parallel: DefaultParallelChunks}
}

// WithChunks returns a copy of c whose broadcasts have chunks of size
// recipients, parallel of them delivered at once (defaults
// DefaultChunkSize and DefaultParallelChunks).
func (c *Client) WithChunks(size, parallel int) *Client {
	chunked := *c
	chunked.chunkSize, chunked.parallel = size, parallel
	return &chunked
}

// ForTenant returns a copy of c that starts and finds only tenant's
// broadcasts, as starter.Client.ForTenant does notifications; "" is the
// single tenant.
func (c *Client) ForTenant(tenant string) *Client {
	scoped := *c
	scoped.notifications = c.notifications.ForTenant(tenant)
	return &scoped
}

// Send starts b, or joins the broadcast already started with its
// key (running or completed), exactly as Send does a notification: the
// same key with another payload is a *onceflow.ConflictError, an invalid
// b a *onceflow.ValidationError, and neither starts anything. The
// recipients go to the RecipientStore, not to Temporal; a join stores
// nothing.
func (c *Client) Send(ctx context.Context, b onceflow.Broadcast) (starter.Started, error) {
	if err := c.notifications.Scope(&b.Tenant); err != nil {
		return starter.Started{}, err
	}
	if err := b.Validate(); err != nil {
		return starter.Started{}, err
	}
	if err := b.ValidateSendAt(time.Now(), c.notifications.MaxSendAhead()); err != nil {
		return starter.Started{}, err
	}
	fp := b.Fingerprint()
	scoped := b.ScopedKey()
	id := WorkflowID(scoped)
	existing, joined, err := c.existing(ctx, b.Key, id, fp)
	if err != nil || joined {
		return existing, err
	}
	if err := c.notifications.CheckLedger(ctx, b.Key, onceflow.BroadcastLedgerKey(scoped), fp); err != nil {
		return starter.Started{}, err
	}
	in := Input{
		Key: b.Key, Tenant: b.Tenant, Channel: b.Channel, Total: len(b.Recipients),
		ChunkSize: c.chunkSize, Parallel: c.parallel, Fingerprint: fp, SendAt: b.SendAt,
	}
	keep := c.keep
	if b.SendAt != nil {
		keep += max(0, time.Until(*b.SendAt))
	}
	if err := c.store.Put(ctx, in.List(), b, in.ChunkSize, keep); err != nil {
		return starter.Started{}, fmt.Errorf("start broadcast %q: %w", b.Key, err)
	}
	run, err := c.notifications.Temporal().ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                c.notifications.TaskQueue(),
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		Memo:                     map[string]any{workflows.FingerprintMemo: fp},
		TypedSearchAttributes:    SearchAttributes(b),
		StaticSummary:            b.Summary(),
	}, WorkflowName, in)
	if err != nil {
		return starter.Started{}, fmt.Errorf("start broadcast %q: %w", b.Key, err)
	}
	started := starter.Started{WorkflowID: run.GetID(), RunID: run.GetRunID()}
	// Another start may have come first with another payload.
	got, err := c.notifications.Fingerprint(ctx, started.WorkflowID, started.RunID)
	if err != nil {
		return starter.Started{}, err
	}
	if got != "" && got != fp {
		return starter.Started{}, &onceflow.ConflictError{Key: b.Key}
	}
	return started, nil
}

// existing looks for a run that a start of id would join: a
// running or completed one. joined reports that there is one with the
// same payload; another payload is a conflict.
func (c *Client) existing(ctx context.Context, key, id, fp string) (starter.Started, bool, error) {
	desc, err := c.notifications.Temporal().DescribeWorkflow(ctx, id, "")
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return starter.Started{}, false, nil
	case err != nil:
		return starter.Started{}, false, fmt.Errorf("look up broadcast %q: %w", key, err)
	}
	if desc.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && desc.Status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		return starter.Started{}, false, nil
	}
	var got string
	if err := desc.GetMemoValue(workflows.FingerprintMemo, &got); err != nil && !errors.Is(err, temporal.ErrNoData) {
		return starter.Started{}, false, fmt.Errorf("read the fingerprint of %s: %w", id, err)
	}
	if got != "" && got != fp {
		return starter.Started{}, false, &onceflow.ConflictError{Key: key}
	}
	// The same payload, or a run started by another SDK without Onceflow's
	// memo: nothing to compare, as Send does.
	return starter.Started{WorkflowID: desc.WorkflowExecution.ID, RunID: desc.WorkflowExecution.RunID}, true, nil
}

// Status is where a broadcast stands: its counts and one page of its
// failed and ambiguous recipients.
type Status struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	// Execution is the workflow's state, as in starter.Status.
	Execution string          `json:"execution"`
	Status    onceflow.Status `json:"status"`
	onceflow.BroadcastResult
	// Problems are failed and ambiguous recipients in the broadcast's
	// order, from the page's cursor on; NextCursor is the next page's
	// cursor, or nil (null) on the last page.
	Problems   []recipients.Problem `json:"problems"`
	NextCursor *string              `json:"next_cursor"`
}

// Page selects problems: Limit of them from Cursor on. Cursor is "" for
// the first page and a page's NextCursor for the next (the index of the
// recipient it starts at, in decimal); Limit 0 means DefaultPage.
type Page struct {
	Cursor string
	Limit  int
}

// cursorIndex is the recipient index a cursor names.
func (p Page) cursorIndex() (int, error) {
	if p.Cursor == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(p.Cursor)
	if err != nil || n < 0 || n > onceflow.MaxRecipients || strings.TrimLeft(p.Cursor, "0123456789") != "" {
		return 0, &onceflow.ValidationError{Field: "cursor", Reason: fmt.Sprintf("%q is not a cursor this broadcast gave out (a page's next_cursor)", p.Cursor)}
	}
	return n, nil
}

// MaxPage bounds a page of problems; a Limit of 0 means DefaultPage.
const (
	DefaultPage = 100
	MaxPage     = 1000
)

// Status returns the broadcast's counts and a page of its problems. A
// running broadcast's counts move as its chunks settle. Like Wait and
// Cancel, it finds only the client's tenant's broadcast with key
// (ForTenant).
func (c *Client) Status(ctx context.Context, key string, page Page) (Status, error) {
	if page.Limit <= 0 {
		page.Limit = DefaultPage
	}
	page.Limit = min(page.Limit, MaxPage)
	from, err := page.cursorIndex()
	if err != nil {
		return Status{}, err
	}
	tc := c.notifications.Temporal()
	id := WorkflowID(c.notifications.ScopedKey(key))
	desc, err := tc.DescribeWorkflow(ctx, id, "")
	if err != nil {
		return Status{}, keyError(key, err)
	}
	st := Status{WorkflowID: desc.WorkflowExecution.ID, RunID: desc.WorkflowExecution.RunID, Execution: starter.ExecutionName(desc.Status)}
	if desc.Status == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		err = tc.GetWorkflow(ctx, st.WorkflowID, st.RunID).Get(ctx, &st.BroadcastResult)
	} else {
		var q interface{ Get(valuePtr any) error }
		if q, err = tc.QueryWorkflow(ctx, st.WorkflowID, st.RunID, workflows.StatusQuery); err == nil {
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
	var fp string
	if err := desc.GetMemoValue(workflows.FingerprintMemo, &fp); err != nil {
		return st, fmt.Errorf("read the fingerprint of %s: %w", id, err)
	}
	problems, next, err := c.store.Problems(ctx, recipients.List{Key: c.notifications.ScopedKey(key), Fingerprint: fp}, from, page.Limit)
	st.Problems = problems
	if st.Problems == nil {
		st.Problems = []recipients.Problem{}
	}
	if next != 0 {
		cursor := strconv.Itoa(next)
		st.NextCursor = &cursor
	}
	return st, err
}

// Wait polls the broadcast every interval until its workflow has
// closed, calling progress (when not nil) with each status, and returns
// the last. A cancelled broadcast is returned without an error: its
// counts say what was sent.
func (c *Client) Wait(ctx context.Context, key string, interval time.Duration, progress func(Status)) (Status, error) {
	for {
		st, err := c.Status(ctx, key, Page{})
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

// Cancel cancels the broadcast: chunks not started are not sent,
// and a chunk in progress stops starting sends once its worker hears of it
// (within about ten seconds). What was sent stays sent.
func (c *Client) Cancel(ctx context.Context, key string) error {
	return keyError(key, c.notifications.Temporal().CancelWorkflow(ctx, WorkflowID(c.notifications.ScopedKey(key)), ""))
}

func keyError(key string, err error) error {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return &onceflow.NotFoundError{Kind: "broadcast", Key: key}
	}
	if err != nil {
		return fmt.Errorf("broadcast %q: %w", key, err)
	}
	return nil
}
