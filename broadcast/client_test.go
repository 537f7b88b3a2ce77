package broadcast_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/broadcast"
	"github.com/onceflow/onceflow/broadcast/recipients"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/internal/teststack"
	"github.com/onceflow/onceflow/providers/webhook"
	"github.com/onceflow/onceflow/starter"
)

// broadcaster is a client of the stack's task queue that can start
// broadcasts, with small chunks so that a few hundred recipients make
// several.
func broadcaster(t *testing.T, s *teststack.Stack) *broadcast.Client {
	rdb := servers.Redis.Client(t)
	return broadcast.NewClient(starter.New(s.TC, s.Queue), recipients.New(rdb), time.Hour).WithChunks(100, 2)
}

func broadcastTo(t *testing.T, url string, n int) onceflow.Broadcast {
	b := onceflow.Broadcast{Key: strings.ReplaceAll(t.Name(), "/", "-"), Channel: onceflow.Webhook, Subject: "Sale", Body: "Everything must go."}
	for i := range n {
		b.Recipients = append(b.Recipients, onceflow.Recipient{ID: fmt.Sprintf("user-%d", i), To: fmt.Sprintf("%s/hooks/%d", url, i)})
	}
	return b
}

func deliveryIDs(b onceflow.Broadcast) []string {
	ids := make([]string, len(b.Recipients))
	for i, r := range b.Recipients {
		ids[i] = onceflow.RecipientDeliveryID(b.ScopedKey(), r.ID)
	}
	return ids
}

func waitBroadcast(t *testing.T, c *broadcast.Client, key string) broadcast.Status {
	t.Helper()
	st, err := c.Wait(teststack.Context(t), key, 200*time.Millisecond, nil)
	require.NoError(t, err)
	return st
}

func TestBroadcastDeliversEachRecipientOnceAndAReRunSendsNothing(t *testing.T) {
	s := newStack(t, nil)
	c := broadcaster(t, s)
	rcv := testenv.NewReceiver(t)
	b := broadcastTo(t, rcv.URL, 250)
	ctx := teststack.Context(t)

	started, err := c.Send(ctx, b)
	require.NoError(t, err)
	assert.Equal(t, "broadcast/"+b.Key, started.WorkflowID)
	st := waitBroadcast(t, c, b.Key)
	assert.Equal(t, "completed", st.Execution)
	assert.Equal(t, onceflow.Delivered, st.Status)
	assert.Equal(t, 250, st.Total)
	assert.Equal(t, 250, st.Delivered, st.Progress())
	assert.Equal(t, 0, st.Pending)
	assert.Equal(t, 3, st.Chunks, "100, 100 and 50")
	assert.Empty(t, st.Problems)
	for _, id := range deliveryIDs(b) {
		require.Equal(t, 1, rcv.Raw(id), id)
	}
	testenv.RecordHistory(t, s.TC, started.WorkflowID, started.RunID, "broadcast/delivered")

	// The same broadcast again joins the completed one.
	again, err := c.Send(ctx, b)
	require.NoError(t, err)
	assert.Equal(t, started, again)

	// Once Temporal has forgotten it, a new run sends nobody twice: the
	// dedup records suppress every recipient.
	teststack.DeleteWorkflow(t, s.TC, servers.Temporal.GetDefaultNamespace(), started.WorkflowID)
	rerun, err := c.Send(ctx, b)
	require.NoError(t, err)
	assert.NotEqual(t, started.RunID, rerun.RunID)
	st = waitBroadcast(t, c, b.Key)
	assert.Equal(t, 250, st.Suppressed, st.Progress())
	assert.Equal(t, onceflow.Suppressed, st.Status)
	for _, id := range deliveryIDs(b) {
		require.Equal(t, 1, rcv.Raw(id), "re-run re-sent %s", id)
	}
}

func TestBroadcastWithAnotherPayloadIsAConflict(t *testing.T) {
	s := newStack(t, nil)
	c := broadcaster(t, s)
	rcv := testenv.NewReceiver(t)
	b := broadcastTo(t, rcv.URL, 10)
	ctx := teststack.Context(t)
	_, err := c.Send(ctx, b)
	require.NoError(t, err)

	other := b
	other.Recipients = append([]onceflow.Recipient(nil), b.Recipients...)
	other.Recipients[3].To += "-changed"
	_, err = c.Send(ctx, other)
	var conflict *onceflow.ConflictError
	require.ErrorAs(t, err, &conflict)

	st := waitBroadcast(t, c, b.Key)
	assert.Equal(t, 10, st.Delivered)
	assert.Equal(t, 1, rcv.Raw(deliveryIDs(b)[3]))
}

func TestBroadcastValidationNamesTheField(t *testing.T) {
	s := newStack(t, nil)
	c := broadcaster(t, s)
	b := broadcastTo(t, "https://partner.example", 20)
	b.Recipients[17].To = "not a url"
	_, err := c.Send(teststack.Context(t), b)
	var ve *onceflow.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "recipients[17].to", ve.Field)

	b = broadcastTo(t, "https://partner.example", 20)
	b.Recipients[9].ID = b.Recipients[2].ID
	_, err = c.Send(teststack.Context(t), b)
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "recipients[9].id", ve.Field)
	assert.Contains(t, ve.Reason, "recipients[2].id")

	// send_at is bounded as a notification's is (a year by default).
	b = broadcastTo(t, "https://partner.example", 20)
	tooLate := time.Now().Add(onceflow.DefaultMaxSendAhead + 24*time.Hour)
	b.SendAt = &tooLate
	_, err = c.Send(teststack.Context(t), b)
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "send_at", ve.Field)

	_, err = c.Status(teststack.Context(t), b.Key, broadcast.Page{})
	var nf *onceflow.NotFoundError
	require.ErrorAs(t, err, &nf, "nothing was started")
}

func TestBroadcastCancelledBeforeSendAtSendsNothing(t *testing.T) {
	s := newStack(t, nil)
	c := broadcaster(t, s)
	rcv := testenv.NewReceiver(t)
	b := broadcastTo(t, rcv.URL, 150)
	later := time.Now().Add(time.Hour)
	b.SendAt = &later
	ctx := teststack.Context(t)
	started, err := c.Send(ctx, b)
	require.NoError(t, err)
	st, err := c.Status(ctx, b.Key, broadcast.Page{})
	require.NoError(t, err)
	assert.Equal(t, 150, st.Pending)
	require.NoError(t, c.Cancel(ctx, b.Key))

	st = waitBroadcast(t, c, b.Key)
	assert.Equal(t, "cancelled", st.Execution)
	assert.Equal(t, 150, st.Cancelled, st.Progress())
	assert.Equal(t, onceflow.Cancelled, st.Status)
	assert.Empty(t, rcv.Log(), "nothing was sent")
	testenv.RecordHistory(t, s.TC, started.WorkflowID, started.RunID, "broadcast/cancelled_before_send_at")
}

func TestBroadcastProblemsArePagedWithReasons(t *testing.T) {
	s := newStack(t, nil)
	c := broadcaster(t, s)
	// Every third recipient's endpoint is gone for good.
	gone := map[string]bool{}
	rcv := testenv.NewReceiver(t, testenv.Answer(func(id string, _ int) int {
		if gone[id] {
			return http.StatusGone
		}
		return 0
	}))
	b := broadcastTo(t, rcv.URL, 230)
	var wantFailed []string
	for i, id := range deliveryIDs(b) {
		if i%3 == 0 {
			gone[id] = true
			wantFailed = append(wantFailed, b.Recipients[i].ID)
		}
	}
	ctx := teststack.Context(t)
	started, err := c.Send(ctx, b)
	require.NoError(t, err)
	st := waitBroadcast(t, c, b.Key)
	testenv.RecordHistory(t, s.TC, started.WorkflowID, started.RunID, "broadcast/some_failed")
	assert.Equal(t, len(wantFailed), st.Failed)
	assert.Equal(t, 230-len(wantFailed), st.Delivered)
	assert.Equal(t, onceflow.Failed, st.Status)

	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 20)
		page, err := c.Status(ctx, b.Key, broadcast.Page{Cursor: cursor, Limit: 25})
		require.NoError(t, err)
		for _, p := range page.Problems {
			assert.Equal(t, onceflow.Failed, p.Status)
			assert.Contains(t, p.Reason, "410")
			got = append(got, p.ID)
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	assert.Equal(t, wantFailed, got, "every failed recipient once, in order")

	_, err = c.Status(ctx, b.Key, broadcast.Page{Cursor: "-1"})
	var invalid *onceflow.ValidationError
	require.ErrorAs(t, err, &invalid, "a cursor no page gave out")
	assert.Equal(t, "cursor", invalid.Field)
}

func TestBroadcastRespectsTheChannelRateLimit(t *testing.T) {
	cfg := servers.WorkerConfig()
	cfg.Rates = map[onceflow.Channel]float64{onceflow.Webhook: 40}
	s := servers.New(t, cfg, nil)
	c := broadcaster(t, s)
	var mu sync.Mutex
	var arrivals []time.Time
	rcv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		mu.Unlock()
	}))
	t.Cleanup(rcv.Close)
	b := broadcastTo(t, rcv.URL, 80)
	_, err := c.Send(teststack.Context(t), b)
	require.NoError(t, err)
	st := waitBroadcast(t, c, b.Key)
	require.Equal(t, 80, st.Delivered, st.Progress())

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, arrivals, 80)
	// 40 per second across both chunks' 64 sends in flight: the 80 sends
	// span at least 79 intervals of 25ms, however fast the machine.
	spread := arrivals[len(arrivals)-1].Sub(arrivals[0])
	assert.GreaterOrEqual(t, spread, 1900*time.Millisecond, "80 sends at 40/s took only %v", spread)
}

func TestBroadcastRendersTheTemplateForEachRecipient(t *testing.T) {
	cfg := servers.WorkerConfig()
	cfg.TemplatesDir = teststack.TemplatesDir(t)
	s := servers.New(t, cfg, nil)
	c := broadcaster(t, s)
	var mu sync.Mutex
	bodies := map[string]string{}
	rcv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		var p webhook.Payload
		_ = json.NewDecoder(r.Body).Decode(&p)
		mu.Lock()
		bodies[r.Header.Get("Idempotency-Key")] = p.Data.Subject + " / " + p.Data.Body
		mu.Unlock()
	}))
	t.Cleanup(rcv.Close)
	b := broadcastTo(t, rcv.URL, 3)
	b.Subject, b.Body, b.Template = "", "", "order-shipped"
	for i := range b.Recipients {
		b.Recipients[i].Data = map[string]any{"name": fmt.Sprintf("Member %d", i), "order": 100 + i}
	}
	// The last one lacks a variable: it fails, the others are sent.
	delete(b.Recipients[2].Data, "name")
	_, err := c.Send(teststack.Context(t), b)
	require.NoError(t, err)
	st := waitBroadcast(t, c, b.Key)
	assert.Equal(t, 2, st.Delivered, st.Progress())
	require.Len(t, st.Problems, 1)
	assert.Equal(t, b.Recipients[2].ID, st.Problems[0].ID)
	assert.Contains(t, st.Problems[0].Reason, `needs variable "name"`)

	ids := deliveryIDs(b)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, "Order 100 shipped / Hi Member 0, order 100 is on its way.", bodies[ids[0]])
	assert.Equal(t, "Order 101 shipped / Hi Member 1, order 101 is on its way.", bodies[ids[1]])
	assert.NotContains(t, bodies, ids[2], "not sent")
}

func TestBroadcastWhoseListWasLostFailsWithoutSending(t *testing.T) {
	s := newStack(t, nil)
	c := broadcaster(t, s)
	rcv := testenv.NewReceiver(t)
	b := broadcastTo(t, rcv.URL, 150)
	soon := time.Now().Add(2 * time.Second)
	b.SendAt = &soon
	ctx := teststack.Context(t)
	_, err := c.Send(ctx, b)
	require.NoError(t, err)
	// Redis loses the list (no persistence, say) before send_at.
	rdb := servers.Redis.Client(t)
	keys, err := rdb.Keys(ctx, "onceflow:{bcast:"+b.Key+"/*").Result()
	require.NoError(t, err)
	require.NotEmpty(t, keys)
	require.NoError(t, rdb.Del(ctx, keys...).Err())

	st := waitBroadcast(t, c, b.Key)
	assert.Equal(t, 150, st.Failed, st.Progress())
	assert.Equal(t, onceflow.Failed, st.Status)
	require.NotEmpty(t, st.Notes)
	assert.Contains(t, st.Notes[0], "not in Redis")
	assert.Empty(t, rcv.Log())
}

func TestBroadcastCancelledMidwaySendsNoChunkNotStarted(t *testing.T) {
	s := newStack(t, nil)
	c := broadcaster(t, s)
	// Each send takes 100ms: 20 chunks of 100 take a few seconds.
	rcv := testenv.NewReceiver(t, testenv.Slow(1, 100*time.Millisecond))
	b := broadcastTo(t, rcv.URL, 2000)
	ctx := teststack.Context(t)
	_, err := c.Send(ctx, b)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(rcv.Log()) > 0 }, time.Minute, 10*time.Millisecond)
	require.NoError(t, c.Cancel(ctx, b.Key))

	st := waitBroadcast(t, c, b.Key)
	assert.Equal(t, "cancelled", st.Execution)
	assert.Positive(t, st.Cancelled, st.Progress())
	assert.Zero(t, st.Pending+st.Failed+st.Ambiguous, st.Progress())
	assert.Equal(t, 2000, st.Delivered+st.Cancelled)
	sent := 0
	for _, id := range deliveryIDs(b) {
		require.LessOrEqual(t, rcv.Raw(id), 1)
		sent += rcv.Raw(id)
	}
	assert.Equal(t, st.Delivered, sent, "what is counted delivered is what was sent, and nothing else was")
	t.Log(st.Progress())
}

// TestBroadcastCancelledMidChunkStopsTheChunk cancels a broadcast of one
// chunk that takes longer than a heartbeat throttle interval: the chunk
// hears of it at its next heartbeat, lets its sends in flight finish, and
// sends nobody else.
func TestBroadcastCancelledMidChunkStopsTheChunk(t *testing.T) {
	s := newStack(t, nil)
	c := broadcast.NewClient(starter.New(s.TC, s.Queue), recipients.New(servers.Redis.Client(t)), time.Hour).WithChunks(1000, 1)
	// 1,000 sends of 400ms, 32 at a time: about 12s, past the 8s between
	// heartbeats.
	rcv := testenv.NewReceiver(t, testenv.Slow(1, 400*time.Millisecond))
	b := broadcastTo(t, rcv.URL, 1000)
	ctx := teststack.Context(t)
	_, err := c.Send(ctx, b)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(rcv.Log()) > 0 }, time.Minute, 10*time.Millisecond)
	require.NoError(t, c.Cancel(ctx, b.Key))

	st := waitBroadcast(t, c, b.Key)
	t.Log(st.Progress())
	assert.Equal(t, "cancelled", st.Execution)
	assert.Positive(t, st.Cancelled, "the chunk stopped before its end")
	assert.Equal(t, 1000, st.Delivered+st.Cancelled, st.Progress())
	sent := 0
	for _, id := range deliveryIDs(b) {
		sent += rcv.Raw(id)
	}
	assert.Equal(t, st.Delivered, sent, "what is counted delivered is what was sent, and nothing else was")
}

// TestBroadcastKeyReusedAfterItsWorkflowIsGoneIsAConflict: once Temporal
// has deleted a broadcast's workflow, the dedup ledger still knows the
// payload its key was used for, and a start with another payload is
// refused up front, in a named tenant as in the single one. (The tenant's
// check used to scope the ledger key twice, "acme@@broadcast/acme@key",
// and found nothing there.)
func TestBroadcastKeyReusedAfterItsWorkflowIsGoneIsAConflict(t *testing.T) {
	for _, tenant := range []string{"", "acme"} {
		t.Run("tenant="+tenant, func(t *testing.T) {
			s := newStack(t, nil)
			notifications := starter.New(s.TC, s.Queue, starter.WithLedger(dedup.New(servers.Redis.Client(t), time.Hour)))
			c := broadcast.NewClient(notifications, recipients.New(servers.Redis.Client(t)), time.Hour).WithChunks(100, 2).ForTenant(tenant)
			rcv := testenv.NewReceiver(t)
			b := broadcastTo(t, rcv.URL, 5)
			ctx := teststack.Context(t)

			started, err := c.Send(ctx, b)
			require.NoError(t, err)
			assert.Equal(t, 5, waitBroadcast(t, c, b.Key).Delivered)
			teststack.DeleteWorkflow(t, s.TC, servers.Temporal.GetDefaultNamespace(), started.WorkflowID)

			other := b
			other.Recipients = append([]onceflow.Recipient(nil), b.Recipients...)
			other.Recipients[0].To += "-changed"
			_, err = c.Send(ctx, other)
			var conflict *onceflow.ConflictError
			require.ErrorAs(t, err, &conflict)
			assert.Equal(t, b.Key, conflict.Key)
			_, err = c.Status(ctx, b.Key, broadcast.Page{})
			var nf *onceflow.NotFoundError
			assert.ErrorAs(t, err, &nf, "nothing was started")
		})
	}
}
