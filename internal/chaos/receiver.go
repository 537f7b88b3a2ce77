//go:build linux

package chaos

import (
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/onceflow/onceflow/providers/webhook"
)

// Faults are the receiver's misbehaviours, each a share of requests.
type Faults struct {
	// ServerError answers 500 without applying the delivery.
	ServerError float64
	// TooMany answers 429 with Retry-After: 1 without applying it.
	TooMany float64
	// Slow applies the delivery, then answers only after SlowBy, past the
	// sender's deadline: the sender cannot know it was applied.
	Slow   float64
	SlowBy time.Duration
	// Reset applies the delivery, then resets the connection unanswered.
	Reset float64
}

// receiver is the partner system under test: it applies each delivery once
// per Idempotency-Key, as a careful partner would, answers repeats with
// Idempotent-Replayed, and counts every raw request.
type receiver struct {
	faults Faults
	mu     sync.Mutex
	rng    *rand.Rand
	// raw counts requests per Idempotency-Key; applied counts applications
	// per notification key (from the body), which a second Idempotency-Key
	// for one notification would push past 1.
	raw      map[string]int
	appliedK map[string]bool
	applied  map[string]int
	// replays counts requests that arrived after their Idempotency-Key had
	// been applied: the re-sends a receiver without dedup would apply twice.
	replays  map[string]int
	keyOf    map[string]string
	injected map[string]int
}

func newReceiver(f Faults, seed uint64) *receiver {
	return &receiver{
		faults: f, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		raw: map[string]int{}, appliedK: map[string]bool{}, applied: map[string]int{},
		replays: map[string]int{}, keyOf: map[string]string{}, injected: map[string]int{},
	}
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var p webhook.Payload
	_ = json.Unmarshal(body, &p)
	id := req.Header.Get("Idempotency-Key")

	r.mu.Lock()
	r.raw[id]++
	r.keyOf[id] = p.Data.Key
	roll := r.rng.Float64()
	f := r.faults
	var fault string
	switch {
	case roll < f.ServerError:
		fault = "receiver 500"
	case roll < f.ServerError+f.TooMany:
		fault = "receiver 429"
	case roll < f.ServerError+f.TooMany+f.Slow:
		fault = "receiver slow"
	case roll < f.ServerError+f.TooMany+f.Slow+f.Reset:
		fault = "receiver reset"
	}
	if fault != "" {
		r.injected[fault]++
	}
	replayed := false
	if fault != "receiver 500" && fault != "receiver 429" {
		if r.appliedK[id] {
			replayed = true
			r.replays[id]++
		} else {
			r.appliedK[id] = true
			r.applied[p.Data.Key]++
		}
	}
	r.mu.Unlock()

	switch fault {
	case "receiver 500":
		w.WriteHeader(http.StatusInternalServerError)
		return
	case "receiver 429":
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	case "receiver slow":
		select {
		case <-time.After(f.SlowBy):
		case <-req.Context().Done():
			return
		}
	case "receiver reset":
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			if tcp, ok := conn.(*net.TCPConn); ok {
				_ = tcp.SetLinger(0)
			}
			_ = conn.Close()
		}
		return
	}
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.WriteHeader(http.StatusOK)
}
