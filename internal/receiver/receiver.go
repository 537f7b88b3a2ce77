// Package receiver is the webhook receiver that Onceflow's tests and its
// chaos harness deliver to: a real HTTP handler standing in for a partner
// system. It counts every raw request per Idempotency-Key (the delivery ID)
// and what it applied, applies a delivery once per key when it
// deduplicates (answering a repeat with Idempotent-Replayed: true, as a
// careful partner does), and misbehaves as its Plan says. Given the signing
// key, it verifies every request's Standard Webhooks signature and body, as
// a partner must before acting on one, and keeps a log of what it answered.
package receiver

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/onceflow/onceflow/providers/webhook"
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
	// Key, when set, is the signing key (webhook.ParseSecret): a request
	// whose signature, webhook-id or body does not check out is answered
	// 400, applies nothing and is listed by Invalid.
	Key []byte

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
	log     []Entry
	invalid []string
}

// Entry is the receiver's own record of one request and its answer.
type Entry struct {
	ID string
	// Key is the notification key in the body.
	Key string
	// Body is the notification's body in the payload.
	Body string
	// N counts the requests with this ID so far, this one included.
	N int
	// Applied: this request took effect.
	Applied bool
	// Replayed: the answer says "Idempotent-Replayed: true".
	Replayed bool
	// Planned is how the Plan said to treat the request.
	Planned Response
	// Answered: the answer was written to the connection (not reset, not
	// abandoned because the sender gave up waiting).
	Answered bool
}

// ServeHTTP records the request and answers it as the Plan says.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var payload webhook.Payload
	perr := json.Unmarshal(body, &payload)
	id := req.Header.Get("Idempotency-Key")

	r.mu.Lock()
	if r.raw == nil {
		r.raw, r.applied, r.appliedKey, r.replays = map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	}
	if r.Key != nil {
		if problem := check(r.Key, req.Header, body, payload, perr); problem != "" {
			r.invalid = append(r.invalid, fmt.Sprintf("%s: %s", id, problem))
			r.mu.Unlock()
			http.Error(w, problem, http.StatusBadRequest)
			return
		}
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
	entry := len(r.log)
	r.log = append(r.log, Entry{ID: id, Key: payload.Data.Key, Body: payload.Data.Body, N: r.raw[id], Applied: (resp.Status/100 == 2 || resp.ApplyAnyway) && !replayed,
		Replayed: replayed && resp.Status/100 == 2, Planned: resp})
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
	// Marked answered before the answer goes out, so that whoever reads
	// the log after receiving it sees it; unmarked if it could not be
	// written. Not unmarked when the request's context ends after the
	// flush: a sender that has read the answer may close the connection
	// before this handler returns, which cancels the context too.
	r.mu.Lock()
	r.log[entry].Answered = req.Context().Err() == nil
	r.mu.Unlock()
	w.WriteHeader(resp.Status)
	if err := http.NewResponseController(w).Flush(); err != nil {
		r.mu.Lock()
		r.log[entry].Answered = false
		r.mu.Unlock()
	}
}

// check verifies a request as a partner does before acting on it: the
// Standard Webhooks signature, webhook-id equal to Idempotency-Key, and a
// notification payload with its key.
func check(key []byte, h http.Header, body []byte, p webhook.Payload, perr error) string {
	switch {
	case !webhook.Verify(key, h, body):
		return "bad signature"
	case h.Get("webhook-id") == "" || h.Get("webhook-id") != h.Get("Idempotency-Key"):
		return "webhook-id and Idempotency-Key differ"
	case perr != nil:
		return "body is not JSON: " + perr.Error()
	case p.Type != "notification" || p.Data.Key == "" || p.Timestamp.IsZero():
		return "body is not a notification with a key and a timestamp"
	}
	return ""
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

// Log returns the receiver's record of every request that passed its
// checks, in arrival order.
func (r *Receiver) Log() []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Entry(nil), r.log...)
}

// Invalid lists the requests refused because their signature or body did
// not check out.
func (r *Receiver) Invalid() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.invalid...)
}
