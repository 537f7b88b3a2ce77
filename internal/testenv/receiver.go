package testenv

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Receiver is a real HTTP server standing in for a partner system that
// receives webhooks. It counts every raw request per webhook-id and, like a
// careful partner, can apply each Idempotency-Key once.
type Receiver struct {
	URL string

	// Dedup makes the receiver apply a delivery once per Idempotency-Key
	// and answer repeats with "Idempotent-Replayed: true".
	dedup bool
	// answer picks the status of the nth raw request (from 1) for an ID.
	answer func(id string, n int) int
	// retryAfter is sent as Retry-After with every 429 and 503.
	retryAfter string
	// slowFor requests per ID are answered only after slowBy.
	slowFor int
	slowBy  time.Duration

	mu      sync.Mutex
	raw     map[string]int
	applied map[string]int
	seen    []http.Header
}

// ReceiverOption configures a Receiver.
type ReceiverOption func(*Receiver)

// Dedup makes the receiver honour Idempotency-Key.
func Dedup() ReceiverOption { return func(r *Receiver) { r.dedup = true } }

// Answer sets how the receiver answers the nth raw request for an ID;
// without it every request gets 200. An answer of 0 means 200.
func Answer(f func(id string, n int) int) ReceiverOption {
	return func(r *Receiver) { r.answer = f }
}

// RetryAfter makes every 429 and 503 answer carry "Retry-After: v".
func RetryAfter(v string) ReceiverOption { return func(r *Receiver) { r.retryAfter = v } }

// Slow makes the receiver apply the first n requests for every ID and then
// take d to answer them, like a partner whose response is lost to a timeout.
func Slow(n int, d time.Duration) ReceiverOption {
	return func(r *Receiver) { r.slowFor, r.slowBy = n, d }
}

// Statuses answers the first requests for every ID with codes, then 200.
func Statuses(codes ...int) ReceiverOption {
	return Answer(func(_ string, n int) int {
		if n <= len(codes) {
			return codes[n-1]
		}
		return http.StatusOK
	})
}

// NewReceiver starts a Receiver on loopback; the test's cleanup stops it.
func NewReceiver(t testing.TB, opts ...ReceiverOption) *Receiver {
	r := &Receiver{raw: map[string]int{}, applied: map[string]int{}}
	for _, o := range opts {
		o(r)
	}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// ServeHTTP records the request and answers it.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	_, _ = io.Copy(io.Discard, req.Body)
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	r.raw[id]++
	n := r.raw[id]
	r.seen = append(r.seen, req.Header.Clone())
	code := http.StatusOK
	if r.answer != nil {
		if c := r.answer(id, n); c != 0 {
			code = c
		}
	}
	replayed := false
	if code >= 200 && code < 300 {
		key := req.Header.Get("Idempotency-Key")
		if r.dedup && r.applied[key] > 0 {
			replayed = true
		} else {
			r.applied[key]++
		}
	}
	slow := n <= r.slowFor
	r.mu.Unlock()
	if slow {
		select {
		case <-time.After(r.slowBy):
		case <-req.Context().Done():
		}
	}
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	if r.retryAfter != "" && (code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable) {
		w.Header().Set("Retry-After", r.retryAfter)
	}
	w.WriteHeader(code)
}

// Raw counts the requests that arrived with webhook-id id.
func (r *Receiver) Raw(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.raw[id]
}

// Applied counts the times the receiver applied the delivery with
// Idempotency-Key id: what its users would see.
func (r *Receiver) Applied(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applied[id]
}

// Headers returns the headers of every request so far, in arrival order.
func (r *Receiver) Headers() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]http.Header(nil), r.seen...)
}
