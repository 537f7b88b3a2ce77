// Package receiver is the webhook receiver that Onceflow's tests and its
// chaos harness deliver to: a real HTTP handler standing in for a partner
// system. It counts every raw request per Idempotency-Key (the delivery ID)
// and what it applied, applies a delivery once per key when it
// deduplicates (answering a repeat with Idempotent-Replayed: true, as a
// careful partner does), and misbehaves as its Plan says.
package receiver

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Response is how the receiver treats one request.
type Response struct {
	// Status answers the request; 0 means 200. A 2xx applies the delivery
	// (once per key when deduplicating); any other status applies nothing
	// unless ApplyAnyway.
	Status int
	// ApplyAnyway applies the delivery although Status says it failed: a
	// receiver that acted and then could not say so.
	ApplyAnyway bool
	// RetryAfter is sent as the Retry-After header when not empty.
	RetryAfter string
	// Delay holds the answer back this long, after the delivery was
	// applied: past the sender's deadline, the sender cannot know.
	Delay time.Duration
	// Reset answers with a connection reset instead of a status, after
	// the delivery was applied (or not) as Status and ApplyAnyway say.
	Reset bool
}

// Plan decides how to treat the nth raw request (from 1) carrying
// delivery ID id.
type Plan func(id string, n int) Response

// Receiver is an http.Handler; its zero value applies every request and
// answers 200. Set Dedup and Plan before serving.
type Receiver struct {
	// Dedup applies a delivery once per Idempotency-Key and answers
	// repeats with "Idempotent-Replayed: true".
	Dedup bool
	Plan  Plan

	mu sync.Mutex
	// raw counts requests per Idempotency-Key; applied counts
	// applications per Idempotency-Key, and appliedKey per notification
	// key from the payload, which a second delivery ID for one
	// notification would push past 1.
	raw        map[string]int
	applied    map[string]int
	appliedKey map[string]int
	// replays counts requests whose key had already been applied: the
	// re-sends a receiver without dedup would apply twice.
	replays map[string]int
	headers []http.Header
}

// ServeHTTP records the request and answers it as the Plan says.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var payload struct {
		Data struct {
			Key string `json:"key"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &payload)
	id := req.Header.Get("Idempotency-Key")

	r.mu.Lock()
	if r.raw == nil {
		r.raw, r.applied, r.appliedKey, r.replays = map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	}
	r.raw[id]++
	r.headers = append(r.headers, req.Header.Clone())
	var resp Response
	if r.Plan != nil {
		resp = r.Plan(id, r.raw[id])
	}
	if resp.Status == 0 {
		resp.Status = http.StatusOK
	}
	replayed := false
	if resp.Status/100 == 2 || resp.ApplyAnyway {
		if r.applied[id] > 0 {
			r.replays[id]++
			replayed = r.Dedup
		}
		if !replayed {
			r.applied[id]++
			r.appliedKey[payload.Data.Key]++
		}
	}
	r.mu.Unlock()

	if resp.Delay > 0 {
		select {
		case <-time.After(resp.Delay):
		case <-req.Context().Done():
			return
		}
	}
	if resp.Reset {
		Reset(w)
		return
	}
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	if resp.RetryAfter != "" {
		w.Header().Set("Retry-After", resp.RetryAfter)
	}
	w.WriteHeader(resp.Status)
}

// Reset closes the request's connection with a TCP reset, unanswered.
func Reset(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

// Raw counts the requests that carried delivery ID id.
func (r *Receiver) Raw(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.raw[id]
}

// Applied counts the times the receiver applied the delivery with ID id:
// what its users would see.
func (r *Receiver) Applied(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applied[id]
}

// AppliedFor counts the deliveries applied for the notification key.
func (r *Receiver) AppliedFor(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.appliedKey[key]
}

// Replays counts the requests for id that came after it had been applied.
func (r *Receiver) Replays(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.replays[id]
}

// Headers returns the headers of every request so far, in arrival order.
func (r *Receiver) Headers() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]http.Header(nil), r.headers...)
}
