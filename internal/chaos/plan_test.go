//go:build linux

package chaos

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The faults of a delivery's successive requests are drawn independently:
// a delivery that met a fault is not doomed to meet it again.
func TestPlanDrawsEachRequestAfresh(t *testing.T) {
	p := plan{seed: 9, faults: Faults{ServerError: 0.3}}
	again := 0
	for i := range 1000 {
		id := fmt.Sprintf("dlv_%d", i)
		if p.http("webhook", id, 1) != "" && p.http("webhook", id, 2) != "" {
			again++
		}
	}
	assert.InDelta(t, 90, again, 30, "about 0.3 x 0.3 of deliveries meet the fault twice")
	assert.Equal(t, p.http("sms", "+15550000001", 3), plan{seed: 9, faults: p.faults}.http("sms", "+15550000001", 3), "the same seed draws the same fault")
}

// A run owes each configured fault kind to the first request of one of a
// channel's recipients, so that a fault with a small share cannot miss a
// small run; later requests, other recipients and kinds without a share
// are drawn as before.
func TestPlanOwesEveryConfiguredKindOnce(t *testing.T) {
	tiny := 1e-12
	p := plan{seed: 9, faults: Faults{ServerError: tiny, TooMany: tiny, Slow: tiny, Reset: tiny}, first: map[string]string{}}
	p.owe("email", []string{"a@x", "b@x", "c@x", "d@x", "e@x"})
	p.owe("sms", []string{"+1", "+2"})

	got := map[string]bool{}
	for _, rcpt := range []string{"a@x", "b@x", "c@x", "d@x"} {
		got[p.smtp(rcpt, 1)] = true
		assert.Empty(t, p.smtp(rcpt, 2), "only the first request of %s is owed a fault", rcpt)
	}
	assert.Equal(t, map[string]bool{fault451: true, fault421: true, faultSlowData: true, faultDrop: true}, got, "every SMTP kind with a share, once")
	assert.Empty(t, p.smtp("e@x", 1), "a recipient past the owed kinds is drawn")
	assert.Equal(t, fault500, p.http("sms", "+1", 1))
	assert.Equal(t, fault429, p.http("sms", "+2", 1), "5xx after apply has no share: not owed")
	assert.Empty(t, p.http("webhook", "+1", 1), "owed per channel")
	assert.Empty(t, plan{seed: 9, faults: p.faults}.http("sms", "+1", 1), "a plan that owes nothing draws")
}
