package testenv

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onceflow/onceflow/internal/receiver"
)

// Receiver is a real HTTP server on loopback standing in for a partner
// system that receives webhooks (receiver.Receiver).
type Receiver struct {
	URL string
	*receiver.Receiver

	// answer picks the status of the nth raw request (from 1) for an ID.
	answer func(id string, n int) int
	// retryAfter is sent as Retry-After with every 429 and 503.
	retryAfter string
	// applyThen answers the first request for every ID with this status
	// after applying it.
	applyThen int
	// slowFor requests per ID are answered only after slowBy.
	slowFor int
	slowBy  time.Duration
}

// ReceiverOption configures a Receiver.
type ReceiverOption func(*Receiver)

// Dedup makes the receiver apply a delivery once per Idempotency-Key and
// answer repeats with "Idempotent-Replayed: true".
func Dedup() ReceiverOption { return func(r *Receiver) { r.Dedup = true } }

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

// ApplyThen makes the receiver apply the first request for every ID and
// answer it with code: a receiver that acted, then failed.
func ApplyThen(code int) ReceiverOption { return func(r *Receiver) { r.applyThen = code } }

// Statuses answers the first requests for every ID with codes, then 200.
func Statuses(codes ...int) ReceiverOption {
	return Answer(func(_ string, n int) int {
		if n <= len(codes) {
			return codes[n-1]
		}
		return http.StatusOK
	})
}

// RefuseUntil answers every request with code until fixed is set: a
// receiver broken until its operator fixes it.
func RefuseUntil(fixed *atomic.Bool, code int) ReceiverOption {
	return Answer(func(string, int) int {
		if fixed.Load() {
			return http.StatusOK
		}
		return code
	})
}

// NewReceiver starts a Receiver on loopback; the test's cleanup stops it.
func NewReceiver(t testing.TB, opts ...ReceiverOption) *Receiver {
	r := &Receiver{Receiver: &receiver.Receiver{}}
	for _, o := range opts {
		o(r)
	}
	r.Plan = r.plan
	srv := httptest.NewServer(r.Receiver)
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

func (r *Receiver) plan(id string, n int) receiver.Response {
	var resp receiver.Response
	if r.answer != nil {
		resp.Status = r.answer(id, n)
	}
	if r.retryAfter != "" && (resp.Status == http.StatusTooManyRequests || resp.Status == http.StatusServiceUnavailable) {
		resp.RetryAfter = r.retryAfter
	}
	if n == 1 && r.applyThen != 0 {
		resp.Status, resp.ApplyAnyway = r.applyThen, true
	}
	if n <= r.slowFor {
		resp.Delay = r.slowBy
	}
	return resp
}
