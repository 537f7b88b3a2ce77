package redisproc_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/internal/redisproc"
)

func client(t *testing.T, s *redisproc.Server) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestExtraArgumentsOverrideTheDefaultsAcrossRestarts(t *testing.T) {
	ctx := context.Background()
	s, err := redisproc.Start(t.TempDir(), 0, "--appendonly", "no", "--maxmemory-policy", "allkeys-lru")
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	for _, step := range []string{"started", "restarted"} {
		got, err := client(t, s).ConfigGet(ctx, "*").Result()
		require.NoError(t, err)
		assert.Equal(t, "no", got["appendonly"], step)
		assert.Equal(t, "allkeys-lru", got["maxmemory-policy"], step)
		if step == "started" {
			require.NoError(t, s.Restart())
		}
	}
}

func TestReplicaIsSyncedWhenStartedAndStopsAtOnce(t *testing.T) {
	ctx := context.Background()
	primary, err := redisproc.Start(t.TempDir(), 0)
	require.NoError(t, err)
	t.Cleanup(primary.Stop)
	require.NoError(t, client(t, primary).Set(ctx, "k", "v", 0).Err())

	replica, err := primary.StartReplica(t.TempDir())
	require.NoError(t, err)
	got, err := client(t, replica).Get(ctx, "k").Result()
	require.NoError(t, err)
	assert.Equal(t, "v", got, "the replica has the primary's data when StartReplica returns")
	n, err := client(t, primary).Wait(ctx, 1, time.Second).Result()
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "the primary counts the replica")

	// Just after its sync the replica still writes its first append-only
	// file, and refuses the first request to shut down.
	start := time.Now()
	replica.Stop()
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestWhatWasWrittenBeforeASIGKILLSurvivesIt(t *testing.T) {
	ctx := context.Background()
	s, err := redisproc.Start(t.TempDir(), 0)
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	require.NoError(t, client(t, s).Set(ctx, "k", "v", 0).Err())
	time.Sleep(redisproc.KillSafeAfter)

	s.Kill()
	_, err = client(t, s).Ping(ctx).Result()
	require.Error(t, err, "the server is gone after Kill")
	require.NoError(t, s.Restart())
	got, err := client(t, s).Get(ctx, "k").Result()
	require.NoError(t, err)
	assert.Equal(t, "v", got, "the append-only file brought the key back")
}

// A clean shutdown writes the snapshot that these settings ask for; a kill
// leaves none, so only a real SIGKILL loses the key.
func TestKillGivesRedisNoChanceToSave(t *testing.T) {
	ctx := context.Background()
	s, err := redisproc.Start(t.TempDir(), 0, "--appendonly", "no", "--save", "3600 1")
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	require.NoError(t, client(t, s).Set(ctx, "k", "v", 0).Err())
	require.NoError(t, s.Restart())
	n, err := client(t, s).Exists(ctx, "k").Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "a clean stop saves the snapshot")

	require.NoError(t, client(t, s).Set(ctx, "k2", "v", 0).Err())
	s.Kill()
	require.NoError(t, s.Restart())
	n, err = client(t, s).Exists(ctx, "k2").Result()
	require.NoError(t, err)
	assert.Zero(t, n, "killed, Redis saved nothing")
}
