package onceflow_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/onceflow/onceflow"
)

// A skipped fallback was not tried: it neither settles its delivery nor
// hides the failure before it.
func TestLastStepPassesOverSkippedFallbacks(t *testing.T) {
	step := func(s onceflow.Status) onceflow.DeliveryResult { return onceflow.DeliveryResult{Status: s} }
	failedThenSkipped := onceflow.DeliveryResult{Status: onceflow.Failed, Fallbacks: []onceflow.DeliveryResult{step(onceflow.Skipped)}}
	assert.Equal(t, onceflow.Failed, failedThenSkipped.LastStep().Status)
	assert.Equal(t, onceflow.Failed, onceflow.Result{Deliveries: []onceflow.DeliveryResult{failedThenSkipped}}.Status())

	skippedThenDelivered := onceflow.DeliveryResult{Status: onceflow.Failed, Fallbacks: []onceflow.DeliveryResult{step(onceflow.Skipped), step(onceflow.Delivered)}}
	assert.Equal(t, onceflow.Delivered, skippedThenDelivered.LastStep().Status)

	assert.Equal(t, onceflow.Skipped, step(onceflow.Skipped).LastStep().Status, "a skipped delivery settles itself")
}
