package onceflow_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
)

func withSteps(deliveries, fallbacks int, body string) onceflow.Notification {
	n := onceflow.Notification{Key: "k", Body: body}
	for i := range deliveries {
		d := onceflow.Delivery{Channel: onceflow.Webhook, To: fmt.Sprintf("https://example.com/%d", i)}
		for j := range fallbacks {
			d.Fallback = append(d.Fallback, onceflow.Delivery{Channel: onceflow.Webhook, To: fmt.Sprintf("https://example.com/%d/%d", i, j)})
		}
		n.Deliveries = append(n.Deliveries, d)
	}
	return n
}

// Content times steps is bounded, so that the worst case's history stays
// small: the largest body is fine for up to 128 steps, not for 300.
func TestContentTimesStepsIsBounded(t *testing.T) {
	big := strings.Repeat("b", onceflow.MaxBodyBytes)
	assert.NoError(t, withSteps(50, 0, big).Validate())
	assert.NoError(t, withSteps(32, 3, big).Validate(), "128 steps")
	err := withSteps(50, 5, big).Validate()
	var ve *onceflow.ValidationError
	require.True(t, errors.As(err, &ve), "%v", err)
	assert.Equal(t, "body", ve.Field)
	assert.Contains(t, ve.Reason, "300 deliveries and fallbacks")
	assert.Contains(t, ve.Reason, "at most 27962 bytes each for 300")
	assert.NoError(t, withSteps(50, 5, strings.Repeat("b", 27962)).Validate())
	assert.Equal(t, 300, withSteps(50, 5, "").Steps())
}
