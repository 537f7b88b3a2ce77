package ratelimit_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/ratelimit"
)

var server *testenv.Redis

func TestMain(m *testing.M) { testenv.RunWithRedis(m, &server) }

func TestReservationsAreSpacedAtTheRate(t *testing.T) {
	l, err := ratelimit.New(server.Client(t), t.Name(), 50)
	require.NoError(t, err)
	for i := range 10 {
		wait, ok, err := l.Reserve(context.Background(), time.Minute)
		require.NoError(t, err)
		require.True(t, ok)
		assert.InDelta(t, float64(i)*20, float64(wait.Milliseconds()), 5, "slot %d", i)
	}
}

func TestConcurrentReservationsNeverShareASlot(t *testing.T) {
	rdb := server.Client(t)
	var mu sync.Mutex
	var waits []time.Duration
	var wg sync.WaitGroup
	for range 4 { // four "workers", each with its own limiter over one Redis key
		l, err := ratelimit.New(rdb, t.Name(), 100)
		require.NoError(t, err)
		for range 25 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w, ok, err := l.Reserve(context.Background(), time.Minute)
				if assert.NoError(t, err) && assert.True(t, ok) {
					mu.Lock()
					waits = append(waits, w)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	require.Len(t, waits, 100)
	// 100 slots at 100/s span about a second, 10ms apart.
	var longest time.Duration
	for _, w := range waits {
		longest = max(longest, w)
	}
	assert.InDelta(t, 990, float64(longest.Milliseconds()), 60)
}

func TestSlotBeyondMaxWaitIsNotReserved(t *testing.T) {
	l, err := ratelimit.New(server.Client(t), t.Name(), 10)
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
	r, err := ratelimit.ParseRates(" sms=50, email=2.5 ")
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{"sms": 50, "email": 2.5}, r)
	for _, bad := range []string{"sms", "sms=0", "sms=fast", "=5"} {
		_, err := ratelimit.ParseRates(bad)
		assert.ErrorContains(t, err, bad)
	}
}
