package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func allow(t *testing.T, b *Budgets, caller string) (time.Duration, bool) {
	t.Helper()
	wait, ok, err := b.Allow(context.Background(), caller)
	require.NoError(t, err)
	return wait, ok
}

// A budget admits its burst at once, then refuses without charging
// anything, saying how long until the next request is admitted; other
// callers keep their own budgets; and a process sharing the Redis shares
// them (two Budgets of one name).
func TestBudgetsAdmitABurstThenRefuse(t *testing.T) {
	rdb := server.Client(t)
	l := Limit{Burst: 3, Interval: time.Minute}
	one, other := NewBudgets(rdb, t.Name(), l), NewBudgets(rdb, t.Name(), l)
	for i := range 3 {
		_, ok := allow(t, []*Budgets{one, other}[i%2], "203.0.113.7")
		require.True(t, ok, "request %d of the burst", i+1)
	}
	for range 3 {
		wait, ok := allow(t, other, "203.0.113.7")
		assert.False(t, ok, "the burst is spent, across both processes")
		assert.InDelta(t, time.Minute.Seconds(), wait.Seconds(), 1, "one interval until a request is regained; refusals charge nothing")
	}
	_, ok := allow(t, one, "203.0.113.8")
	assert.True(t, ok, "another caller has its own budget")
	_, ok = allow(t, NewBudgets(rdb, t.Name()+"-other", l), "203.0.113.7")
	assert.True(t, ok, "budgets of another name are apart")
}

// A refused caller is admitted again once the wait it was told has passed,
// and the key expires once the budget is full again.
func TestBudgetsRecover(t *testing.T) {
	rdb := server.Client(t)
	b := NewBudgets(rdb, t.Name(), Limit{Burst: 2, Interval: 200 * time.Millisecond})
	allow(t, b, "c")
	allow(t, b, "c")
	wait, ok := allow(t, b, "c")
	require.False(t, ok)
	time.Sleep(wait)
	_, ok = allow(t, b, "c")
	assert.True(t, ok, "admitted after the wait")
	ttl, err := rdb.PTTL(context.Background(), "onceflow:limit:"+t.Name()+":{c}").Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, time.Duration(0))
	assert.LessOrEqual(t, ttl, 2*200*time.Millisecond, "the key lives until the budget is full again")
}

func TestOffAdmitsEverythingWithoutRedis(t *testing.T) {
	b := NewBudgets(nil, "off", Limit{})
	for range 100 {
		_, ok := allow(t, b, "c")
		require.True(t, ok)
	}
}

func TestParseLimit(t *testing.T) {
	for in, want := range map[string]Limit{
		"60/1m":           {Burst: 60, Interval: time.Second},
		" 10/s ":          {Burst: 10, Interval: 100 * time.Millisecond},
		"10/s,burst=100":  {Burst: 100, Interval: 100 * time.Millisecond},
		"1/1h, burst=5":   {Burst: 5, Interval: time.Hour},
		"off":             {},
		"120/2m,burst=10": {Burst: 10, Interval: time.Second},
	} {
		got, err := ParseLimit(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "60", "0/1m", "-1/1m", "60/", "60/0s", "60/soon", "60/1m,burst=0", "60/1m,100", "60/1m,burst=x", "2000000/1s", "on"} {
		_, err := ParseLimit(bad)
		assert.ErrorContains(t, err, `"`+bad+`"`, bad)
	}
	assert.Equal(t, "60/1m0s", Limit{Burst: 60, Interval: time.Second}.String())
	assert.Equal(t, "off", Limit{}.String())
}
