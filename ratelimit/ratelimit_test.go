package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSlotBeyondMaxWaitIsNotReserved(t *testing.T) {
	l, err := New(server.Client(t), t.Name(), 10)
	require.NoError(t, err)
	for range 5 {
		_, ok, err := l.Reserve(context.Background(), 450*time.Millisecond)
		require.NoError(t, err)
		require.True(t, ok)
	}
	wait, ok, err := l.Reserve(context.Background(), 450*time.Millisecond)
	require.NoError(t, err)
	assert.False(t, ok)
	assert.InDelta(t, 500, float64(wait.Milliseconds()), 30)
	// Refusing reserved nothing: the next caller willing to wait gets slot 6.
	wait, ok, err = l.Reserve(context.Background(), time.Second)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.InDelta(t, 500, float64(wait.Milliseconds()), 30)
}

func TestParseRates(t *testing.T) {
	r, err := ParseRates(" sms=50, email=2.5 ")
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{"sms": 50, "email": 2.5}, r)
	for _, bad := range []string{"sms", "sms=0", "sms=fast", "=5"} {
		_, err := ParseRates(bad)
		assert.ErrorContains(t, err, bad)
	}
}
