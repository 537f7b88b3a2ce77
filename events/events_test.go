package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/events"
	"github.com/onceflow/onceflow/internal/freeport"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/internal/teststack"
	"github.com/onceflow/onceflow/providers/webhook"
	"github.com/onceflow/onceflow/worker"
)

var servers teststack.Servers

func TestMain(m *testing.M) { teststack.Main(m, &servers) }

// eventsReceiver is the operator's events endpoint: a real HTTP server that
// verifies every event's Standard Webhooks signature as a receiver must.
type eventsReceiver struct {
	t      *testing.T
	key    []byte
	mu     sync.Mutex
	events []events.Event
	raw    []string
	// refuse answers the first refuse requests with 503.
	refuse atomic.Int32
}

func (e *eventsReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if !webhook.Verify(e.key, r.Header, body) {
		e.t.Errorf("event with a bad signature: %s", body)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if e.refuse.Add(-1) >= 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var ev events.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		e.t.Errorf("event is not JSON: %v: %s", err, body)
	}
	if r.Header.Get("webhook-id") != ev.ID {
		e.t.Errorf("webhook-id %q is not the event's ID %q", r.Header.Get("webhook-id"), ev.ID)
	}
	e.mu.Lock()
	e.events = append(e.events, ev)
	e.raw = append(e.raw, string(body))
	e.mu.Unlock()
}

func (e *eventsReceiver) got() ([]events.Event, []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]events.Event(nil), e.events...), append([]string(nil), e.raw...)
}

func (e *eventsReceiver) ofType(typ string) []events.Event {
	evs, _ := e.got()
	var out []events.Event
	for _, ev := range evs {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

var nextDB atomic.Int32

// stack is a worker whose events go to eventsURL, with its own Redis
// database so that its outbox is its own, and the dispatcher running.
func stack(t *testing.T, eventsURL string, failingAfter time.Duration) *teststack.Stack {
	t.Helper()
	cfg := servers.WorkerConfig()
	cfg.RedisURL = "redis://" + servers.Redis.Addr + "/" + strconv.Itoa(int(nextDB.Add(1)))
	cfg.EventsURL = eventsURL
	cfg.EndpointFailingAfter = failingAfter
	s := servers.New(t, cfg, nil)
	rdb, err := cfg.Open(false)
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	stop, err := worker.StartEvents(context.Background(), cfg, rdb, nil)
	require.NoError(t, err)
	t.Cleanup(stop)
	return s
}

func newEventsReceiver(t *testing.T) (*eventsReceiver, string) {
	key, err := webhook.ParseSecret(testenv.WebhookSecret)
	require.NoError(t, err)
	e := &eventsReceiver{t: t, key: key}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return e, srv.URL + "/onceflow-events"
}

func send(t *testing.T, s *teststack.Stack, n onceflow.Notification) onceflow.Result {
	t.Helper()
	ctx := teststack.Context(t)
	started, err := s.Client.Send(ctx, n)
	require.NoError(t, err)
	res, err := s.Client.WaitRun(ctx, started)
	require.NoError(t, err)
	return res
}

func key(t *testing.T) string { return strings.ReplaceAll(t.Name(), "/", "-") }

// The secret-looking path, query and the e-mail address must never reach
// an event.
const (
	secretPath = "/hooks/s3cret-path-token"
	secretMail = "alice@example.com"
)

func rejectedNotification(t *testing.T, url string) onceflow.Notification {
	return onceflow.Notification{
		Key: key(t), Subject: "Order shipped", Body: "Your order is on its way.",
		Deliveries: []onceflow.Delivery{
			{Channel: onceflow.Webhook, To: url + secretPath + "?sig=qu3ry-secret"},
			// No e-mail provider: refused at once, a second final failure.
			{Channel: onceflow.Email, To: secretMail},
		},
	}
}

func TestRejectedDeliveriesEmitOneFailedEventEach(t *testing.T) {
	evr, eventsURL := newEventsReceiver(t)
	s := stack(t, eventsURL, time.Hour)
	rcv := testenv.NewReceiver(t, testenv.Statuses(400, 400, 400))
	n := rejectedNotification(t, rcv.URL)
	res := send(t, s, n)
	require.Equal(t, onceflow.Failed, res.Deliveries[0].Status, res.Deliveries[0].Reason)
	require.Equal(t, onceflow.Failed, res.Deliveries[1].Status, res.Deliveries[1].Reason)

	require.Eventually(t, func() bool { return len(evr.ofType(events.TypeDeliveryFailed)) >= 2 }, time.Minute, 50*time.Millisecond)
	failed := evr.ofType(events.TypeDeliveryFailed)
	byID := map[string]events.Event{}
	for _, ev := range failed {
		_, dup := byID[ev.Data.DeliveryID]
		assert.False(t, dup, "a second event for delivery %s", ev.Data.DeliveryID)
		byID[ev.Data.DeliveryID] = ev
	}
	hook, ok := byID[res.Deliveries[0].DeliveryID]
	require.True(t, ok, "no event for the webhook delivery: %+v", failed)
	assert.Equal(t, n.Key, hook.Data.Key)
	assert.Equal(t, "webhook", hook.Data.Channel)
	assert.Equal(t, "failed", hook.Data.Status)
	assert.Contains(t, hook.Data.Reason, "400")
	mail, ok := byID[res.Deliveries[1].DeliveryID]
	require.True(t, ok, "no event for the e-mail delivery: %+v", failed)
	assert.Equal(t, "email", mail.Data.Channel)

	assertNoRecipients(t, evr)
}

func assertNoRecipients(t *testing.T, evr *eventsReceiver) {
	t.Helper()
	_, raw := evr.got()
	require.NotEmpty(t, raw)
	for _, body := range raw {
		assert.NotContains(t, body, "s3cret", "an event carries the webhook URL's path")
		assert.NotContains(t, body, "qu3ry", "an event carries the webhook URL's query")
		assert.NotContains(t, body, secretMail, "an event carries an e-mail address")
		assert.NotContains(t, body, "on its way", "an event carries the body")
	}
}

// A receiver that applies a request and then answers 500, and does not
// deduplicate: the re-send may be its second copy, an ambiguous delivery.
func TestAmbiguousDeliveryEmitsAmbiguousEvent(t *testing.T) {
	evr, eventsURL := newEventsReceiver(t)
	s := stack(t, eventsURL, time.Hour)
	rcv := testenv.NewReceiver(t, testenv.ApplyThen(500))
	res := send(t, s, onceflow.Notification{Key: key(t), Body: "Your order is on its way.",
		Deliveries: []onceflow.Delivery{{Channel: onceflow.Webhook, To: rcv.URL + secretPath}}})
	require.Equal(t, onceflow.Ambiguous, res.Deliveries[0].Status, res.Deliveries[0].Reason)

	require.Eventually(t, func() bool { return len(evr.ofType(events.TypeDeliveryAmbiguous)) >= 1 }, time.Minute, 50*time.Millisecond)
	ev := evr.ofType(events.TypeDeliveryAmbiguous)[0]
	assert.Equal(t, res.Deliveries[0].DeliveryID, ev.Data.DeliveryID)
	assert.Equal(t, "ambiguous", ev.Data.Status)
	assert.Equal(t, res.Deliveries[0].Reason, ev.Data.Reason)
	assert.Empty(t, evr.ofType(events.TypeDeliveryFailed), "an ambiguous delivery is not reported as failed")
	assertNoRecipients(t, evr)
}

// An events receiver that is not listening yet, then refuses, still gets
// the event later; the delivery it reports settles as it would without
// events.
func TestEventsReceiverDownAtFirstGetsTheEventLater(t *testing.T) {
	port, err := freeport.Get()
	require.NoError(t, err)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s := stack(t, "http://"+addr+"/events", time.Hour)
	rcv := testenv.NewReceiver(t, testenv.Statuses(400))
	res := send(t, s, rejectedNotification(t, rcv.URL))

	// The same notification on a stack without events (a subtest: a task
	// queue of its own) settles alike.
	t.Run("without events", func(t *testing.T) {
		plain := servers.New(t, servers.WorkerConfig(), nil)
		n := rejectedNotification(t, rcv.URL)
		want := send(t, plain, n)
		for i := range res.Deliveries {
			assert.Equal(t, want.Deliveries[i].Status, res.Deliveries[i].Status)
			assert.Equal(t, want.Deliveries[i].Reason, res.Deliveries[i].Reason)
		}
	})

	key, err := webhook.ParseSecret(testenv.WebhookSecret)
	require.NoError(t, err)
	evr := &eventsReceiver{t: t, key: key}
	evr.refuse.Store(1)
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	srv := &http.Server{Handler: evr, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	require.Eventually(t, func() bool { return len(evr.ofType(events.TypeDeliveryFailed)) == 2 }, time.Minute, 50*time.Millisecond,
		"the events that could not be posted at first arrive once the receiver is up")
	assert.Less(t, evr.refuse.Load(), int32(0), "the refused POST was retried")
}

// A destination failing for longer than ONCEFLOW_ENDPOINT_FAILING_AFTER is
// reported once per failing streak; a delivery it accepts ends the streak,
// and the next streak is reported again.
func TestEndpointFailingOncePerStreak(t *testing.T) {
	evr, eventsURL := newEventsReceiver(t)
	s := stack(t, eventsURL, time.Second)
	// Eight failures with retries 100ms, 200ms, ... up to 1s apart: a
	// streak of several seconds, several failures past the second.
	rcv := testenv.NewReceiver(t, testenv.Statuses(503, 503, 503, 503, 503, 503, 503, 503))
	for i := range 2 {
		res := send(t, s, onceflow.Notification{Key: fmt.Sprintf("%s-%d", key(t), i), Body: "Your order is on its way.",
			Deliveries: []onceflow.Delivery{{Channel: onceflow.Webhook, To: rcv.URL + secretPath}}})
		require.Equal(t, onceflow.Delivered, res.Deliveries[0].Status, res.Deliveries[0].Reason)
		require.Greater(t, res.Deliveries[0].Attempts, int32(8))
		require.Eventually(t, func() bool { return len(evr.ofType(events.TypeEndpointFailing)) >= i+1 }, time.Minute, 50*time.Millisecond)
	}
	failing := evr.ofType(events.TypeEndpointFailing)
	require.Len(t, failing, 2, "one event per streak")
	for _, ev := range failing {
		assert.Equal(t, rcv.URL, ev.Data.Origin, "the origin, without path")
		assert.Equal(t, "webhook", ev.Data.Channel)
		require.NotNil(t, ev.Data.FailingSince)
	}
	assert.True(t, failing[1].Data.FailingSince.After(*failing[0].Data.FailingSince), "the second streak began after the first ended")
	assertNoRecipients(t, evr)
}

// A delivery whose retries run out (ONCEFLOW_GIVE_UP_AFTER) is reported
// once, at its end: the attempts before report nothing.
func TestDeliveryOutOfRetriesEmitsOneFailedEvent(t *testing.T) {
	evr, eventsURL := newEventsReceiver(t)
	cfg := servers.WorkerConfig()
	cfg.RedisURL = "redis://" + servers.Redis.Addr + "/" + strconv.Itoa(int(nextDB.Add(1)))
	cfg.EventsURL = eventsURL
	// Retries at 0.1, 0.3, 0.7, 1.5 and 3.1s; the next would be past the
	// deadline, so the last attempt has about 3s to be answered before
	// the deadline cuts it (which would make it ambiguous: it may have
	// sent), however late a loaded machine fires its timers.
	policy := teststack.Policy
	policy.GiveUpAfter, policy.MaxRetryInterval = 6*time.Second, 4*time.Second
	s := servers.NewWithPolicy(t, cfg, policy, nil)
	rdb, err := cfg.Open(false)
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	stop, err := worker.StartEvents(context.Background(), cfg, rdb, nil)
	require.NoError(t, err)
	t.Cleanup(stop)

	rcv := testenv.NewReceiver(t, testenv.Answer(func(string, int) int { return http.StatusServiceUnavailable }))
	res := send(t, s, onceflow.Notification{Key: key(t), Body: "Your order is on its way.",
		Deliveries: []onceflow.Delivery{{Channel: onceflow.Webhook, To: rcv.URL + secretPath}}})
	d := res.Deliveries[0]
	require.Equal(t, onceflow.Failed, d.Status, d.Reason)
	require.Contains(t, d.Reason, "gave up")
	require.Greater(t, d.Attempts, int32(2), "retried before giving up")

	require.Eventually(t, func() bool { return len(evr.ofType(events.TypeDeliveryFailed)) >= 1 }, time.Minute, 50*time.Millisecond)
	failed := evr.ofType(events.TypeDeliveryFailed)
	require.Len(t, failed, 1)
	assert.Equal(t, d.DeliveryID, failed[0].Data.DeliveryID)
	// Reported by the last attempt, or by the one before it when the last
	// retry was due within a second of the deadline (retryTimerSlack).
	assert.GreaterOrEqual(t, failed[0].Data.Attempt, d.Attempts-1)
	assert.LessOrEqual(t, failed[0].Data.Attempt, d.Attempts)
	assertNoRecipients(t, evr)
}
