package ratelimit

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/internal/testenv"
)

// These tests read each reservation's slot by Redis's clock, so they
// assert the schedule itself, whatever the machine's load does to the
// callers.

// server is the Redis under test: the tests run once on a single server,
// then again on a Redis Cluster.
var server *testenv.Backend

func TestMain(m *testing.M) { testenv.RunOnBoth(m, &server) }

// assertEvenlySpaced checks the schedule GCRA promises: no two slots
// closer than interval, and a slot that had to wait for an earlier one
// exactly interval after it (none skipped, none shared). A caller that
// came when the limiter was idle gets "now", which may be later.
func assertEvenlySpaced(t *testing.T, slots []slot, interval time.Duration) {
	t.Helper()
	for i, s := range slots {
		require.True(t, s.ok, "slot %d was reserved", i)
	}
	sorted := slices.SortedFunc(slices.Values(slots), func(a, b slot) int { return cmp.Compare(a.at, b.at) })
	queued := 0
	for i := 1; i < len(sorted); i++ {
		gap := sorted[i].at - sorted[i-1].at
		if sorted[i].wait > 0 {
			queued++
			assert.Equal(t, interval.Microseconds(), gap, "slot %d waited for slot %d", i, i-1)
		} else {
			assert.GreaterOrEqual(t, gap, interval.Microseconds(), "slots %d and %d", i-1, i)
		}
	}
	assert.Positive(t, queued, "some reservations queued behind others")
}

func TestReservationsAreSpacedAtTheRate(t *testing.T) {
	l, err := New(server.Client(t), t.Name(), 50)
	require.NoError(t, err)
	var slots []slot
	for range 10 {
		s, err := l.reserve(context.Background(), time.Minute)
		require.NoError(t, err)
		slots = append(slots, s)
	}
	require.Len(t, slots, 10)
	assertEvenlySpaced(t, slots, 20*time.Millisecond)
	assert.Zero(t, slots[0].wait, "the first slot is now")
}

func TestConcurrentReservationsNeverShareASlot(t *testing.T) {
	rdb := server.Client(t)
	var mu sync.Mutex
	var slots []slot
	var wg sync.WaitGroup
	for range 4 { // four "workers", each with its own limiter over one Redis key
		l, err := New(rdb, t.Name(), 100)
		require.NoError(t, err)
		for range 25 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := l.reserve(context.Background(), time.Minute)
				if assert.NoError(t, err) {
					mu.Lock()
					slots = append(slots, s)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	require.Len(t, slots, 100)
	assertEvenlySpaced(t, slots, 10*time.Millisecond)
}
