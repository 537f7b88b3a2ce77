//go:build linux

package chaos

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/onceflow/onceflow/internal/receiver"
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

// faultyReceiver is the partner system under test: a receiver that
// applies each delivery once per Idempotency-Key, as a careful partner
// would, and misbehaves at random as Faults say, counting what it injected.
type faultyReceiver struct {
	*receiver.Receiver
	faults   Faults
	mu       sync.Mutex
	rng      *rand.Rand
	injected map[string]int
}

func newReceiver(f Faults, seed uint64) *faultyReceiver {
	r := &faultyReceiver{
		Receiver: &receiver.Receiver{Dedup: true},
		faults:   f, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), injected: map[string]int{},
	}
	r.Plan = r.plan
	return r
}

func (r *faultyReceiver) plan(string, int) receiver.Response {
	r.mu.Lock()
	defer r.mu.Unlock()
	roll := r.rng.Float64()
	f := r.faults
	var fault string
	var resp receiver.Response
	switch {
	case roll < f.ServerError:
		fault, resp = "receiver 500", receiver.Response{Status: http.StatusInternalServerError}
	case roll < f.ServerError+f.TooMany:
		fault, resp = "receiver 429", receiver.Response{Status: http.StatusTooManyRequests, RetryAfter: "1"}
	case roll < f.ServerError+f.TooMany+f.Slow:
		fault, resp = "receiver slow", receiver.Response{Delay: f.SlowBy}
	case roll < f.ServerError+f.TooMany+f.Slow+f.Reset:
		fault, resp = "receiver reset", receiver.Response{Reset: true}
	}
	if fault != "" {
		r.injected[fault]++
	}
	return resp
}

// Injected returns how many times each fault was injected.
func (r *faultyReceiver) Injected() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.injected))
	for k, n := range r.injected {
		out[k] = n
	}
	return out
}
