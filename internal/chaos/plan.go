//go:build linux

package chaos

import (
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// Faults are the fake receivers' misbehaviours, each a share of requests
// (of SMTP transactions, for email).
type Faults struct {
	// ServerError answers 500 without applying the request; a relay
	// answers the message with 451 and discards it.
	ServerError float64
	// AppliedError applies the request, then answers 500, 502 or 504: the
	// sender cannot know it took effect. (No SMTP counterpart: a relay
	// that answers 4xx or 5xx to a message it kept breaks SMTP.)
	AppliedError float64
	// TooMany answers 429 with Retry-After: 1 without applying; a relay
	// answers RCPT TO with 421 and closes the connection.
	TooMany float64
	// Slow applies the request, then answers only after SlowBy, past the
	// sender's deadline; a relay takes the message (slow DATA) and answers
	// 250 after SlowBy.
	Slow   float64
	SlowBy time.Duration
	// Reset applies the request, then resets the connection unanswered; a
	// relay takes the message and drops the connection before answering.
	Reset float64
}

// Fault kinds, as the report names them.
const (
	fault500        = "500"
	faultApplied5xx = "5xx after apply"
	fault429        = "429"
	faultSlow       = "slow"
	faultReset      = "reset"
	fault421        = "421"
	fault451        = "451"
	faultDrop       = "drop after accept"
	faultSlowData   = "slow DATA"
)

// leavesDoubt reports whether a fault leaves the sender unable to tell
// whether its request took effect: every fault but the refusals that say
// nothing was done (429, and SMTP's 421 and 451). A 500 is one: an API
// without idempotency keys may have acted before failing.
func leavesDoubt(kind string) bool {
	switch kind {
	case fault500, faultApplied5xx, faultSlow, faultReset, faultDrop, faultSlowData:
		return true
	}
	return false
}

// plan decides each request's fault from the seed, the channel, the
// recipient and the request's number among those for that recipient, not
// from arrival order: the same seed injects the same fault into the nth
// request of a delivery however the requests of different deliveries
// interleave.
//
// Drawn alone, a fault with a small share can miss a small run altogether
// (a 5% SMTP 451 over some 45 transactions does about one run in ten), so
// a run can also name, per channel, recipients whose first request meets
// each configured fault kind for certain (see owe).
type plan struct {
	seed   uint64
	faults Faults
	// first holds the fault owed to the first request of a recipient,
	// keyed by channel and ident; nil owes none.
	first map[string]string
}

// owe makes the first requests to idents, a channel's recipients in the
// run's order, meet each fault kind the channel can be dealt and the plan
// gives a share, one kind per recipient, so that every configured kind is
// injected at least once whatever the seed draws. Call it before any
// request arrives.
func (p plan) owe(channel string, idents []string) {
	kinds := p.kinds(channel)
	for i, kind := range kinds {
		if i == len(idents) {
			return
		}
		p.first[channel+"\x00"+idents[i]] = kind
	}
}

// shares are the fault kinds a channel's far end can be dealt, with their
// shares, in the order pick lays them out: an SMTP relay's for email, an
// HTTP API's for every other channel.
func (p plan) shares(channel string) []share {
	f := p.faults
	if channel == "email" {
		return []share{{fault451, f.ServerError}, {fault421, f.TooMany}, {faultSlowData, f.Slow}, {faultDrop, f.Reset}}
	}
	return []share{{fault500, f.ServerError}, {faultApplied5xx, f.AppliedError}, {fault429, f.TooMany}, {faultSlow, f.Slow}, {faultReset, f.Reset}}
}

// kinds are the fault kinds of shares that have a share in the plan.
func (p plan) kinds(channel string) []string {
	var kinds []string
	for _, s := range p.shares(channel) {
		if s.of > 0 {
			kinds = append(kinds, s.kind)
		}
	}
	return kinds
}

// owed returns the fault owed to the nth request to ident, if any.
func (p plan) owed(channel, ident string, n int) (string, bool) {
	if n != 1 {
		return "", false
	}
	kind, ok := p.first[channel+"\x00"+ident]
	return kind, ok
}

// roll is a number in [0, 1) fixed by the plan's seed and its arguments.
func (p plan) roll(channel, ident string, n int) float64 {
	h := sha256.New()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], p.seed)
	h.Write(b[:])
	h.Write([]byte(channel))
	h.Write([]byte{0})
	h.Write([]byte(ident))
	binary.LittleEndian.PutUint64(b[:], uint64(n))
	h.Write(b[:])
	return float64(binary.LittleEndian.Uint64(h.Sum(nil))>>11) / (1 << 53)
}

// share is one fault kind's share of requests.
type share struct {
	kind string
	of   float64
}

// pick returns the kind whose slice of [0, 1) the roll r falls in, the
// slices laid end to end in order; "" past them all.
func pick(r float64, shares ...share) string {
	for _, s := range shares {
		if r < s.of {
			return s.kind
		}
		r -= s.of
	}
	return ""
}

// http returns the fault for the nth HTTP request to ident, "" for none.
func (p plan) http(channel, ident string, n int) string {
	if kind, ok := p.owed(channel, ident, n); ok {
		return kind
	}
	return pick(p.roll(channel, ident, n), p.shares(channel)...)
}

// appliedStatus is the status of a 5xx-after-apply answer: 500, 502 or 504.
func (p plan) appliedStatus(channel, ident string, n int) int {
	return []int{500, 502, 504}[int(p.roll(channel+"/status", ident, n)*3)]
}

// smtp returns the fault for the nth SMTP transaction to ident.
func (p plan) smtp(ident string, n int) string {
	if kind, ok := p.owed("email", ident, n); ok {
		return kind
	}
	return pick(p.roll("email", ident, n), p.shares("email")...)
}
