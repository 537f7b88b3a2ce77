//go:build linux

package chaos

import (
	"fmt"
	"sort"
	"sync"
)

// sighting is what one fake recipient saw of one delivery.
type sighting struct {
	// Requests counts the requests (SMTP transactions) that reached the
	// fake with this delivery, whatever their answer.
	Requests int
	// Copies counts those it took in: applied, whatever it answered.
	Copies int
	// Effects counts what the recipient would notice: every copy for a
	// mailbox, a phone, a chat channel or a webhook receiver that never
	// deduplicates; one per Idempotency-Key for a deduplicating receiver;
	// one per collapse ID and tag on a device.
	Effects int
	// Faults counts the faults injected into its requests, by kind.
	Faults map[string]int
	// IDs are the provider's IDs of the copies (a Twilio SID, a Slack
	// "slack <channel> ts <ts>" receipt), in the order they were taken.
	IDs []string
	// Lookups counts the provider lookups (Twilio list, Slack history)
	// that asked for this recipient.
	Lookups int
	// Confirmed: the receiver's log holds an answer "Idempotent-Replayed:
	// true" for it that reached the sender.
	Confirmed bool
}

// doubted reports whether a fault that leaves the sender in doubt was
// injected into one of the delivery's requests.
func (s sighting) doubted() bool {
	for k, n := range s.Faults {
		if n > 0 && leavesDoubt(k) {
			return true
		}
	}
	return false
}

// ledger is one fake recipient's record, per recipient identity (a
// delivery ID, an address, a number, a device token, a channel).
type ledger struct {
	mu      sync.Mutex
	seen    map[string]*sighting
	faults  map[string]int
	invalid []string
	// effectKeys counts the copies per effect key where several copies
	// make one effect (a device's collapse ID and tag).
	effectKeys map[string]int
}

func newLedger() *ledger {
	return &ledger{seen: map[string]*sighting{}, faults: map[string]int{}, effectKeys: map[string]int{}}
}

func (l *ledger) get(ident string) *sighting {
	s := l.seen[ident]
	if s == nil {
		s = &sighting{Faults: map[string]int{}}
		l.seen[ident] = s
	}
	return s
}

// request records a request for ident and returns its number, from 1.
func (l *ledger) request(ident string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.get(ident)
	s.Requests++
	return s.Requests
}

// fault records a fault injected into a request for ident.
func (l *ledger) fault(ident, kind string) {
	if kind == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.get(ident).Faults[kind]++
	l.faults[kind]++
}

// apply records a copy taken in for ident; effectKey, when not empty,
// makes copies with the same key one effect.
func (l *ledger) apply(ident, effectKey string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.get(ident)
	s.Copies++
	if effectKey == "" {
		s.Effects++
		return
	}
	l.effectKeys[effectKey]++
	if l.effectKeys[effectKey] == 1 {
		s.Effects++
	}
}

// applyAs records a copy taken in for ident under the provider's id.
func (l *ledger) applyAs(ident, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.get(ident)
	s.Copies++
	s.Effects++
	s.IDs = append(s.IDs, id)
}

// lookup records a lookup for ident.
func (l *ledger) lookup(ident string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.get(ident).Lookups++
}

// refuse records a request refused because it did not check out.
func (l *ledger) refuse(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.invalid = append(l.invalid, fmt.Sprintf(format, args...))
}

// snapshot copies the ledger.
func (l *ledger) snapshot() (seen map[string]sighting, faults map[string]int, invalid []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen = make(map[string]sighting, len(l.seen))
	for k, s := range l.seen {
		c := *s
		c.IDs = append([]string(nil), s.IDs...)
		c.Faults = make(map[string]int, len(s.Faults))
		for f, n := range s.Faults {
			c.Faults[f] = n
		}
		seen[k] = c
	}
	faults = make(map[string]int, len(l.faults))
	for k, n := range l.faults {
		faults[k] = n
	}
	invalid = append([]string(nil), l.invalid...)
	sort.Strings(invalid)
	return seen, faults, invalid
}
