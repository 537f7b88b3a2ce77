package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/providers"
	"github.com/onceflow/onceflow/providers/egress"
	"github.com/onceflow/onceflow/providers/internal/wiretest"
	"github.com/onceflow/onceflow/providers/webhook"
)

var secretKey = []byte("0123456789abcdef0123456789abcdef")

func secret() string { return "whsec_" + base64.StdEncoding.EncodeToString(secretKey) }

func message(to string) providers.Message {
	return providers.Message{
		DeliveryID: "dlv_abc", Key: "order-1-shipped", To: to,
		Subject: "Shipped", Body: "Your order is on its way.",
		Timestamp: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC),
	}
}

type captured struct {
	header http.Header
	body   []byte
}

// receiver is a real HTTP server that records what reached it and answers
// with the statuses it is given, then 200.
func receiver(t *testing.T, answers ...func(http.ResponseWriter)) (*httptest.Server, func() []captured) {
	var mu sync.Mutex
	var got []captured
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		n := len(got)
		got = append(got, captured{r.Header.Clone(), b})
		mu.Unlock()
		if n < len(answers) {
			answers[n](w)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []captured { mu.Lock(); defer mu.Unlock(); return append([]captured(nil), got...) }
}

func status(code int, header ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
	}
}

// loopback lets these tests' receivers, on 127.0.0.1, be reached.
var loopback = egress.Guard{Allow: egress.Loopback()}

func newSender(t *testing.T) *webhook.Sender {
	s, err := webhook.New(secret(), loopback)
	require.NoError(t, err)
	return s
}

func TestSendSignsPerStandardWebhooks(t *testing.T) {
	srv, got := receiver(t)
	receipt, err := newSender(t).Send(context.Background(), message(srv.URL+"/hooks"))
	require.NoError(t, err)
	assert.Equal(t, "HTTP 200", receipt.ID)
	assert.False(t, receipt.Replayed)

	req := got()[0]
	assert.Equal(t, "dlv_abc", req.header.Get("webhook-id"))
	assert.Equal(t, "dlv_abc", req.header.Get("Idempotency-Key"))
	assert.Equal(t, "application/json", req.header.Get("Content-Type"))
	ts, err := strconv.ParseInt(req.header.Get("webhook-timestamp"), 10, 64)
	require.NoError(t, err)
	assert.InDelta(t, time.Now().Unix(), ts, 5, "the timestamp is the time of sending")

	// Verify the way a receiver's Standard Webhooks library does.
	mac := hmac.New(sha256.New, secretKey)
	fmt.Fprintf(mac, "dlv_abc.%d.%s", ts, req.body)
	assert.Equal(t, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)), req.header.Get("webhook-signature"))

	var p webhook.Payload
	require.NoError(t, json.Unmarshal(req.body, &p))
	assert.Equal(t, "notification", p.Type)
	assert.Equal(t, "order-1-shipped", p.Data.Key)
	assert.Equal(t, "Shipped", p.Data.Subject)
	assert.Equal(t, "Your order is on its way.", p.Data.Body)
}

func TestRetriesCarryTheSameIDsAndBody(t *testing.T) {
	srv, got := receiver(t, status(500))
	s := newSender(t)
	_, err := s.Send(context.Background(), message(srv.URL))
	require.Error(t, err)
	_, err = s.Send(context.Background(), message(srv.URL))
	require.NoError(t, err)

	other := message(srv.URL)
	other.DeliveryID = "dlv_other"
	_, err = s.Send(context.Background(), other)
	require.NoError(t, err)

	reqs := got()
	require.Len(t, reqs, 3)
	assert.Equal(t, reqs[0].header.Get("webhook-id"), reqs[1].header.Get("webhook-id"))
	assert.Equal(t, reqs[0].body, reqs[1].body)
	assert.Equal(t, "dlv_other", reqs[2].header.Get("webhook-id"))
	assert.Equal(t, "dlv_other", reqs[2].header.Get("Idempotency-Key"))
}

func TestReplayedHeaderIsReported(t *testing.T) {
	srv, _ := receiver(t, status(200, "Idempotent-Replayed", "true"))
	receipt, err := newSender(t).Send(context.Background(), message(srv.URL))
	require.NoError(t, err)
	assert.True(t, receipt.Replayed)
}

func TestStatusClassification(t *testing.T) {
	future := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	cases := []struct {
		answer     func(http.ResponseWriter)
		ok         bool
		permanent  bool
		maybeSent  bool
		retryAfter time.Duration
	}{
		{answer: status(200), ok: true},
		{answer: status(202), ok: true},
		{answer: status(204), ok: true},
		{answer: status(301, "Location", "/elsewhere"), permanent: true},
		{answer: status(400), permanent: true},
		{answer: status(401), permanent: true},
		{answer: status(404), permanent: true},
		{answer: status(410), permanent: true},
		{answer: status(422), permanent: true},
		{answer: status(408)},
		{answer: status(429, "Retry-After", "7"), retryAfter: 7 * time.Second},
		{answer: status(500), maybeSent: true},
		{answer: status(502), maybeSent: true},
		{answer: status(503, "Retry-After", future), retryAfter: 90 * time.Second},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		c.answer(rec)
		t.Run(strconv.Itoa(rec.Code), func(t *testing.T) {
			srv, got := receiver(t, c.answer)
			_, err := newSender(t).Send(context.Background(), message(srv.URL))
			assert.Len(t, got(), 1, "one request per Send; redirects are not followed")
			if c.ok {
				assert.NoError(t, err)
				return
			}
			pe := providers.Classify(err)
			assert.Equal(t, c.permanent, pe.Permanent)
			assert.Equal(t, c.maybeSent, pe.MaybeSent, "only a 5xx other than 503 may follow an applied request")
			assert.InDelta(t, c.retryAfter.Seconds(), pe.RetryAfter.Seconds(), 2)
			assert.Contains(t, err.Error(), strconv.Itoa(rec.Code))
		})
	}
}

func TestErrorsKeepURLsOut(t *testing.T) {
	_, err := newSender(t).Send(context.Background(), message(wiretest.Refused(t)+"/secret-token"))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "secret-token", "URLs can hold credentials; errors must not")
}

// TestWhatWentOverTheWire: whether a failed webhook may have been applied
// is decided from what reached the receiver. A Standard Webhooks receiver
// deduplicates by webhook-id, so a 5xx is the receiver saying it failed:
// retried with the same ID, not possibly sent. A failure after the whole
// request was written may have been applied.
func TestWhatWentOverTheWire(t *testing.T) {
	answer := func(code int, retryAfter string) func(*testing.T) string {
		return func(t *testing.T) string {
			srv, _ := receiver(t, status(code, "Retry-After", retryAfter))
			return srv.URL
		}
	}
	fault := func(h http.HandlerFunc) func(*testing.T) string {
		return func(t *testing.T) string { return wiretest.Serve(t, h) }
	}
	rows := []struct {
		name      string
		url       func(*testing.T) string
		large     bool
		maybeSent bool
		wait      time.Duration
	}{
		{"connection refused", func(t *testing.T) string { return wiretest.Refused(t) }, false, false, 0},
		{"reset before the body was read", fault(wiretest.ResetBeforeBody), true, false, 0},
		{"reset after the request was read", fault(wiretest.ResetAfterBody), false, true, 0},
		{"no answer after the request was read", fault(wiretest.Silent), false, true, 0},
		// A receiver may have applied it before failing: re-sent with the
		// same ID, and reported unless the receiver confirms the repeat.
		{"500", answer(500, ""), false, true, 0},
		{"502", answer(502, ""), false, true, 0},
		{"504", answer(504, "10"), false, true, 10 * time.Second},
		{"408", answer(408, "5"), false, false, 5 * time.Second},
		{"429", answer(429, "7"), false, false, 7 * time.Second},
		{"503", answer(503, "30"), false, false, 30 * time.Second},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			wiretest.Send(t, newSender(t), message(r.url(t)), r.large, r.maybeSent, r.wait)
		})
	}
}

func TestNewRejectsBadSecrets(t *testing.T) {
	for _, s := range []string{"", "whsec_not base64!", "whsec_" + base64.StdEncoding.EncodeToString([]byte("short"))} {
		_, err := webhook.New(s, loopback)
		assert.ErrorContains(t, err, webhook.SecretEnv, "secret %q", s)
	}
}

// TestNoSilentResendOnABrokenKeptAliveConnection: net/http re-sends a
// request with an Idempotency-Key header by itself when a reused connection
// closes before the answer. Onceflow must see that failure instead, or a
// re-send would go unreported.
func TestNoSilentResendOnABrokenKeptAliveConnection(t *testing.T) {
	var mu sync.Mutex
	seen := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		seen++
		n := seen
		mu.Unlock()
		if n == 1 {
			return // 200, connection kept alive
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close() // the request arrived, the answer never leaves
		}
	}))
	defer srv.Close()
	s := newSender(t)
	_, err := s.Send(context.Background(), message(srv.URL))
	require.NoError(t, err)

	second := message(srv.URL)
	second.DeliveryID = "dlv_second"
	_, err = s.Send(context.Background(), second)
	require.Error(t, err)
	assert.True(t, providers.Classify(err).MaybeSent)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 2, seen, "one request per Send, none re-sent behind Onceflow's back")
}

func TestVerifyAcceptsOnlyTheSignedRequest(t *testing.T) {
	srv, got := receiver(t)
	_, err := newSender(t).Send(context.Background(), message(srv.URL))
	require.NoError(t, err)
	req := got()[0]
	assert.True(t, webhook.Verify(secretKey, req.header, req.body))
	assert.False(t, webhook.Verify(secretKey, req.header, append(req.body, ' ')), "a changed body")
	assert.False(t, webhook.Verify([]byte("another-key-another-key-32bytes!"), req.header, req.body), "another key")
	other := req.header.Clone()
	other.Set("webhook-id", "dlv_forged")
	assert.False(t, webhook.Verify(secretKey, other, req.body), "another webhook-id")
}

// TestRefusesInwardDestinations: by default, a webhook URL that leads to
// loopback, a private network, the metadata address or any other internal
// network is refused before a connection is made, however it is spelled.
func TestRefusesInwardDestinations(t *testing.T) {
	s, err := webhook.New(secret(), egress.Guard{})
	require.NoError(t, err)
	wiretest.RefusesInward(t, s, message(""), wiretest.ListenInward(t), "/hooks")
}

// TestAllowedNetworksAreReached: a network the operator allows is dialled,
// however its address is spelled.
func TestAllowedNetworksAreReached(t *testing.T) {
	in := wiretest.ListenInward(t)
	s, err := webhook.New(secret(), egress.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	require.NoError(t, err)
	for i, host := range []string{"127.0.0.1", "127.1", "0x7f.0.0.1", "2130706433"} {
		_, err := s.Send(context.Background(), message("http://"+host+":"+in.Port+"/hooks"))
		require.NoError(t, err, host)
		assert.EqualValues(t, i+1, in.Conns(), host)
	}
	_, err = s.Send(context.Background(), message("http://[::1]:"+in.Port+"/hooks"))
	assert.ErrorContains(t, err, "destination ::1 is a loopback address", "127.0.0.0/8 does not allow ::1")
}
