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
