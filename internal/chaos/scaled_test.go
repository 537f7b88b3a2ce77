//go:build linux

package chaos_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/internal/chaos"
)

// TestScaledChaosRun is the chaos harness on the scaled-out topology, at a
// small size: Temporal (its own process) on PostgreSQL with 4 history
// shards, a Redis Cluster of 3 primaries with a replica each, 3 worker
// processes on it that are SIGKILLed about every second, 2 API processes
// that every start goes through, a Temporal restart, and a Redis primary
// SIGKILLed mid-run, whose replica takes over and which comes back as a
// replica. Nothing is lost, nothing takes effect twice unreported. The
// large run is `onceflow-chaos --scaled` (docs/chaos.md).
func TestScaledChaosRun(t *testing.T) {
	if testing.Short() {
		t.Skip("the scaled chaos run starts PostgreSQL, a 6-node Redis Cluster and 6 processes, and takes a minute or two; -short skips it")
	}
	dir := t.TempDir()
	const n = 200
	rep, err := chaos.Run(context.Background(), chaos.Config{
		Binary: buildOnceflow(t, dir), Dir: dir, Notifications: n, Starts: 3, Workers: 3,
		KillEvery: time.Second, TemporalRestarts: 1,
		Scaled:   chaos.Scaled{On: true, PrimaryKills: 1, WaitReplicas: 1},
		Receiver: chaos.Faults{ServerError: 0.05, AppliedError: 0.03, TooMany: 0.03, Slow: 0.03, SlowBy: 5 * time.Second, Reset: 0.03},
		SendRate: 25, Seed: 12, Timeout: 4 * time.Minute,
	})
	assertHeld(t, rep, err, n)

	// The topology ran, and its faults happened.
	assert.Contains(t, rep.Topology, "PostgreSQL with 4 history shards")
	require.Len(t, rep.APIAccepted, 2)
	for i, a := range rep.APIAccepted {
		assert.Positive(t, a, "API process %d accepted starts", i+1)
	}
	for _, fault := range []string{"worker SIGKILL", "temporal restart", "redis primary SIGKILL", "redis failover", "redis node back as replica"} {
		assert.Positive(t, rep.Faults[fault], "fault %q happened", fault)
	}
	assert.Positive(t, rep.OnKilledPrimary, "the primary was killed with notifications open on it")
	assert.NoFileExists(t, filepath.Join(dir, "redis.out"), "no single redis-server ran beside the cluster")
}

// Bad combinations are refused before anything starts, naming the field.
func TestScaledConfigRefused(t *testing.T) {
	for _, tc := range []struct {
		cfg  chaos.Config
		want string
	}{
		{chaos.Config{Scaled: chaos.Scaled{On: true}, RedisKills: 1}, "Scaled.PrimaryKills"},
		{chaos.Config{Scaled: chaos.Scaled{PrimaryKills: 1}}, "Scaled.On"},
		{chaos.Config{Scaled: chaos.Scaled{On: true, WaitReplicas: 2}}, "Scaled.WaitReplicas 2"},
		{chaos.Config{Scaled: chaos.Scaled{On: true, Primaries: 2}}, "Scaled.Primaries 2"},
	} {
		tc.cfg.Dir, tc.cfg.Timeout = t.TempDir(), time.Minute
		_, err := chaos.Run(context.Background(), tc.cfg)
		if assert.Error(t, err) {
			assert.Contains(t, err.Error(), tc.want)
		}
	}
}
