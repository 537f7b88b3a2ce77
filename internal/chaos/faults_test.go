//go:build linux

package chaos

import (
	"context"
	"log/slog"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// liveOnlyAfter is a leaseFinder for a worker that claims a lease in the
// moment between the harness's look at its leases and its SIGKILL: while
// the worker runs it holds none that the probe sees; once it is dead the
// lease it claimed is there, still live.
type liveOnlyAfter struct {
	w     *process
	claim lease
}

func (f liveOnlyAfter) held(_ context.Context, pid int) ([]lease, error) {
	if f.w.running() {
		return nil, nil
	}
	return []lease{f.claim}, nil
}

func (f liveOnlyAfter) interrupted(_ context.Context, leases []lease) ([]string, error) {
	var keys []string
	for _, l := range leases {
		keys = append(keys, l.key)
	}
	return keys, nil
}

// A worker kill that lands just after an attempt claimed its leases (and
// after the harness looked) is still a kill on those live leases: the
// deliveries it cut off are ambiguous with evidence, not "without cause".
// This is how five recipients of one broadcast chunk were reported
// unjustified in issue #30: the chunk's attempt claimed all its recipients
// in the milliseconds between the probe and the SIGKILL.
func TestKillCountsLeasesClaimedBetweenTheProbeAndTheKill(t *testing.T) {
	dir := t.TempDir()
	w := &process{name: "worker-1", log: filepath.Join(dir, "worker-1.out"), args: []string{"sleep", "60"}}
	require.NoError(t, w.start(nil))
	t.Cleanup(func() { _, _ = w.stop(syscall.SIGKILL) })
	rep := Report{Faults: map[string]int{}}
	h := &harness{log: slog.New(slog.DiscardHandler), rep: &rep, interrupted: map[string]bool{},
		leases: liveOnlyAfter{w: w, claim: lease{key: "chaos-broadcast-001/member-00026", record: "r", fence: "f"}}}

	h.killWorker(context.Background(), w, time.Millisecond)

	assert.Equal(t, 1, rep.Faults[workerKill])
	assert.True(t, h.interrupted["chaos-broadcast-001/member-00026"], "the lease claimed after the probe counts as interrupted by the kill")
	assert.Equal(t, 1, rep.KillsHitLiveLease)
	assert.Equal(t, 1, rep.LeasesInterrupted)
	assert.Zero(t, rep.KillsUnattributed)
}

func TestJoinLeasesKeepsEachLeaseOnce(t *testing.T) {
	a, b, c := lease{key: "a"}, lease{key: "b"}, lease{key: "c"}
	assert.Equal(t, []lease{a, b, c}, joinLeases([]lease{a, b}, []lease{b, c, a}))
	assert.Empty(t, joinLeases(nil, nil))
}
