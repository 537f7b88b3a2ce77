//go:build linux

package chaos

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/onceflow/onceflow"
)

// An ambiguous delivery with no fault, repeat or kill of its own is
// justified when it was open on a Redis primary that was killed, and only
// then; its reason is counted either way.
func TestAFailoverJustifiesAmbiguity(t *testing.T) {
	tg := target{channel: "push", ident: "device-k", deliveryID: "dlv_k", n: onceflow.Notification{Key: "k"}}
	why := "an earlier attempt may have sent it"
	out := outcome{accepted: map[string]bool{"k": true}, results: map[string]onceflow.Result{
		"k": {Deliveries: []onceflow.DeliveryResult{{Status: onceflow.Ambiguous, Reason: why}}},
	}}
	seen := map[string]map[string]sighting{"push": {"device-k": {Requests: 1, Copies: 1, Effects: 1}}}

	var without Report
	check(&without, []target{tg}, out, seen, nil, nil)
	assert.Len(t, without.Unjustified, 1)

	var with Report
	check(&with, []target{tg}, out, seen, nil, map[string]bool{"k": true})
	assert.Empty(t, with.Unjustified)
	assert.Equal(t, 1, with.Justified[evidenceFailover])
	assert.Equal(t, map[string]int{why: 1}, with.AmbiguousReasons)
}
