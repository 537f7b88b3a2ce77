package onceflow_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
)

func TestSendAtIsBounded(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) onceflow.Notification {
		t := now.Add(d)
		return onceflow.Notification{SendAt: &t}
	}
	assert.NoError(t, onceflow.Notification{}.ValidateSendAt(now, 0), "no send_at")
	assert.NoError(t, at(-time.Hour).ValidateSendAt(now, 0), "past means now")
	assert.NoError(t, at(onceflow.DefaultMaxSendAhead).ValidateSendAt(now, 0), "a year ahead, to the second")

	err := at(onceflow.DefaultMaxSendAhead+time.Second).ValidateSendAt(now, 0)
	var ve *onceflow.ValidationError
	require.True(t, errors.As(err, &ve), "%v", err)
	assert.Equal(t, "send_at", ve.Field)
	assert.Contains(t, ve.Reason, "2027-11-26T12:00:00Z", "names the latest allowed")

	assert.Error(t, at(2*time.Hour).ValidateSendAt(now, time.Hour), "a configured bound")
	assert.NoError(t, at(3*365*24*time.Hour).ValidateSendAt(now, 5*365*24*time.Hour), "a configured larger bound")
	far := at(10 * 365 * 24 * time.Hour)
	far.Key, far.Body, far.Deliveries = "k", "b", []onceflow.Delivery{{Channel: onceflow.Webhook, To: "https://example.com/h"}}
	assert.NoError(t, far.Validate(), "Validate, which the workflow records once, has no clock rule")
}
