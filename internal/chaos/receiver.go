//go:build linux

package chaos

import (
	"fmt"
	"net/http"

	"github.com/onceflow/onceflow/internal/receiver"
)

// webhookFake is a partner system receiving webhooks: a receiver that
// verifies each request's signature and body and misbehaves as the plan
// says. Dedup applies a delivery once per Idempotency-Key, as a careful
// partner does; without it every request is applied (a partner that never
// deduplicates), so that a re-send shows as a second effect.
type webhookFake struct {
	*receiver.Receiver
	channel string
	plan    plan
	ledger  *ledger
	// expect gives the delivery ID a webhook to this receiver with the
	// notification (or broadcast) key and the delivery ID id must carry.
	expect func(key, id string) (deliveryID string, ok bool)
}

func newWebhookFake(channel string, dedup bool, key []byte, p plan, expect func(string, string) (string, bool)) *webhookFake {
	f := &webhookFake{Receiver: &receiver.Receiver{Dedup: dedup, Key: key}, channel: channel, plan: p, ledger: newLedger(), expect: expect}
	f.Plan = f.respond
	return f
}

func (f *webhookFake) respond(id string, n int) receiver.Response {
	fault := f.plan.http(f.channel, id, n)
	f.ledger.fault(id, fault)
	switch fault {
	case fault500:
		return receiver.Response{Status: http.StatusInternalServerError}
	case faultApplied5xx:
		return receiver.Response{Status: f.plan.appliedStatus(f.channel, id, n), ApplyAnyway: true}
	case fault429:
		return receiver.Response{Status: http.StatusTooManyRequests, RetryAfter: "1"}
	case faultSlow:
		return receiver.Response{Delay: f.plan.faults.SlowBy}
	case faultReset:
		return receiver.Response{Reset: true}
	}
	return receiver.Response{}
}

// snapshot reads the receiver's own log into the ledger's form: requests
// and copies per delivery ID, effects as the receiver applied them, and
// whether an "Idempotent-Replayed: true" answer reached the sender.
func (f *webhookFake) snapshot() (map[string]sighting, map[string]int, []string) {
	seen, faults, invalid := f.ledger.snapshot()
	for _, e := range f.Log() {
		if want, ok := f.expect(e.Key, e.ID); !ok || want != e.ID {
			invalid = append(invalid, fmt.Sprintf("%s: webhook for key %q carried delivery ID %s, want %s", f.channel, e.Key, e.ID, want))
		}
	}
	get := func(id string) sighting {
		s, ok := seen[id]
		if !ok {
			s.Faults = map[string]int{}
		}
		return s
	}
	for _, e := range f.Log() {
		s := get(e.ID)
		if e.Planned.Status/100 == 2 || e.Planned.ApplyAnyway {
			s.Copies++
		}
		if e.Replayed && e.Answered {
			s.Confirmed = true
		}
		seen[e.ID] = s
	}
	for id, s := range seen {
		s.Requests = f.Raw(id)
		s.Effects = f.Applied(id)
		seen[id] = s
	}
	invalid = append(invalid, f.Invalid()...)
	return seen, faults, invalid
}
