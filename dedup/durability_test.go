package dedup_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/internal/redisproc"
)

// startRedis starts a redis-server of the test's own, configured by args
// over redisproc's defaults (AOF on, fsync every second).
func startRedis(t testing.TB, args ...string) *redisproc.Server {
	t.Helper()
	s, err := redisproc.Start(t.TempDir(), 0, args...)
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	return s
}

func startReplica(t testing.TB, primary *redisproc.Server, args ...string) *redisproc.Server {
	t.Helper()
	s, err := primary.StartReplica(t.TempDir(), args...)
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	return s
}

func connect(t testing.TB, s *redisproc.Server, password string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, Password: password})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestEvictingRedisIsRefused(t *testing.T) {
	server.OnlyOnce(t)
	ctx := context.Background()
	rdb := connect(t, startRedis(t, "--maxmemory-policy", "allkeys-lru"), "")
	for _, policy := range []string{"allkeys-lru", "volatile-lru", "volatile-ttl", "allkeys-random"} {
		require.NoError(t, rdb.ConfigSet(ctx, "maxmemory-policy", policy).Err())
		_, err := dedup.CheckDurability(ctx, rdb, 0)
		require.Error(t, err, policy)
		assert.ErrorContains(t, err, "maxmemory-policy "+policy, "the error names the setting and its value")
		assert.ErrorContains(t, err, "CONFIG SET maxmemory-policy noeviction", "the error says the fix")
		assert.ErrorContains(t, err, "redis.conf")
	}
	require.NoError(t, rdb.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err())
	warnings, err := dedup.CheckDurability(ctx, rdb, 0)
	require.NoError(t, err)
	assert.Empty(t, warnings, "noeviction with an append-only file is durable")
}

func TestRedisThatHidesItsPolicyIsWarnedAbout(t *testing.T) {
	server.OnlyOnce(t)
	ctx := context.Background()
	const password = "s3cret-pa55"
	rdb := connect(t, startRedis(t, "--rename-command", "CONFIG", "", "--requirepass", password), password)
	warnings, err := dedup.CheckDurability(ctx, rdb, 0)
	require.NoError(t, err, "Redis cannot tell, so the worker starts")
	require.Len(t, warnings, 1)
	assert.Contains(t, warnings[0], "maxmemory-policy")
	assert.Contains(t, warnings[0], "noeviction", "the warning says what to check")
	assert.NotContains(t, warnings[0], password)
}

func TestRedisThatMayForgetOnRestartIsWarnedAbout(t *testing.T) {
	server.OnlyOnce(t)
	ctx := context.Background()
	primary := startRedis(t, "--appendonly", "no")
	rdb := connect(t, primary, "")
	warnings, err := dedup.CheckDurability(ctx, rdb, 0)
	require.NoError(t, err)
	require.Len(t, warnings, 1)
	assert.Contains(t, warnings[0], "appendonly")
	assert.Contains(t, warnings[0], "replica")

	startReplica(t, primary)
	warnings, err = dedup.CheckDurability(ctx, rdb, 1)
	require.NoError(t, err)
	assert.Empty(t, warnings, "a connected replica keeps the records through a restart")

	warnings, err = dedup.CheckDurability(ctx, rdb, 2)
	require.NoError(t, err)
	require.Len(t, warnings, 1)
	assert.Contains(t, warnings[0], dedup.EnvWaitReplicas+"=2 but Redis has 1 connected replicas")
}

func TestInMemoryDevRedisIsWarnedAboutNotRefused(t *testing.T) {
	server.OnlyOnce(t)
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	warnings, err := dedup.CheckDurability(context.Background(), rdb, 0)
	require.NoError(t, err)
	assert.Len(t, warnings, 2, "neither the policy nor the persistence can be read: %q", warnings)
}

func TestUnreachableRedisFailsTheCheck(t *testing.T) {
	server.OnlyOnce(t)
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer func() { _ = rdb.Close() }()
	_, err := dedup.CheckDurability(context.Background(), rdb, 0)
	assert.ErrorContains(t, err, "maxmemory-policy")
}

func TestClaimWaitsForReplicas(t *testing.T) {
	server.OnlyOnce(t)
	ctx := context.Background()
	primary := startRedis(t)
	replica := connect(t, startReplica(t, primary), "")
	rdb := connect(t, primary, "")
	store := dedup.New(rdb, time.Hour, dedup.WaitReplicas(1, 0))
	rec := record(t)

	// A fresh server has no script cached: the pipeline falls back to EVAL.
	require.NoError(t, rdb.ScriptFlush(ctx).Err())
	c, err := store.Claim(ctx, rec, "attempt-1", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, dedup.Granted, c.State)
	state, err := replica.HGet(ctx, redisKey(rec), "s").Result()
	require.NoError(t, err)
	assert.Equal(t, "l", state, "the replica has the lease before anything is sent")

	require.NoError(t, store.Commit(ctx, rec, "attempt-1", "HTTP 200", dedup.Clean))
	c, err = store.Claim(ctx, rec, "attempt-2", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, dedup.AlreadySent, c.State)
}

// The wait for replicas may use up the attempt's context; the lease of the
// unreplicated claim is released all the same, or the next attempt would
// wait for it to run out and then report the delivery as ambiguous,
// although nothing was sent.
func TestUnreplicatedClaimIsReleasedWhenTheWaitUsedUpTheContext(t *testing.T) {
	server.OnlyOnce(t)
	rdb := connect(t, startRedis(t), "")
	rec := record(t)
	// Cache the script, so that the claim goes in one EVALSHA.
	_, err := dedup.New(rdb, time.Hour).Claim(context.Background(), dedup.Record{Key: "other", DeliveryID: "dlv_other"}, "t", time.Minute)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = dedup.New(rdb, time.Hour, dedup.WaitReplicas(1, 200*time.Millisecond)).Claim(ctx, rec, "attempt-1", time.Minute)
	require.Error(t, err, "no replica, and no time left")

	c, err := dedup.New(rdb, time.Hour).Claim(context.Background(), rec, "attempt-2", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, dedup.Granted, c.State, "no lease left behind")
	assert.False(t, c.Ambiguous)
}

func TestClaimWithoutEnoughReplicasFails(t *testing.T) {
	server.OnlyOnce(t)
	ctx := context.Background()
	rdb := connect(t, startRedis(t), "")
	store := dedup.New(rdb, time.Hour, dedup.WaitReplicas(1, 100*time.Millisecond))
	rec := record(t)

	start := time.Now()
	_, err := store.Claim(ctx, rec, "attempt-1", time.Minute)
	require.ErrorIs(t, err, dedup.ErrNotReplicated)
	assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond, "the claim waited for the replica")
	assert.ErrorContains(t, err, dedup.EnvWaitReplicas+"=1")
	assert.ErrorContains(t, err, "0 of 1 replicas acknowledged it within 100ms")
	assert.ErrorContains(t, err, "nothing was sent and the lease was released")

	// The lease is gone, and nothing suggests the delivery may have been sent.
	c, err := dedup.New(rdb, time.Hour).Claim(ctx, rec, "attempt-2", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, dedup.Granted, c.State)
	assert.False(t, c.Ambiguous)
}

func TestWaitNeedsAReadTimeoutLongerThanTheWait(t *testing.T) {
	server.OnlyOnce(t)
	s := startRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr, ReadTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	_, err := dedup.New(rdb, time.Hour, dedup.WaitReplicas(1, 2*time.Second)).Claim(context.Background(), record(t), "attempt-1", time.Minute)
	assert.ErrorContains(t, err, "read timeout")
	assert.ErrorContains(t, err, dedup.EnvWaitReplicas)
}

// BenchmarkDurability measures what a delivery's claim and commit cost with
// each durability setting, side by side: the append-only file fsynced every
// second (the default) or on every write, and claims that wait for one
// replica (ONCEFLOW_REDIS_WAIT_REPLICAS=1) or not. Every server has one
// replica, so that waiting is the only difference. One client gives the
// latency a delivery sees; benchClients per core the throughput.
func BenchmarkDurability(b *testing.B) {
	for _, fsync := range []string{"everysec", "always"} {
		primary := startRedis(b, "--appendfsync", fsync)
		startReplica(b, primary)
		rdb := redis.NewClient(&redis.Options{Addr: primary.Addr, PoolSize: 2 * benchClients})
		b.Cleanup(func() { _ = rdb.Close() })
		for _, wait := range []int{0, 1} {
			store := dedup.New(rdb, time.Hour, dedup.WaitReplicas(wait, 0))
			b.Run(fmt.Sprintf("fsync=%s/wait=%d/clients=1", fsync, wait), func(b *testing.B) {
				for b.Loop() {
					claimCommit(b, store)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
			})
			b.Run(fmt.Sprintf("fsync=%s/wait=%d/clients=%d", fsync, wait, benchClients*runtime.GOMAXPROCS(0)), func(b *testing.B) {
				b.SetParallelism(benchClients)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						claimCommit(b, store)
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
			})
		}
	}
}

// benchDeliveries numbers the benchmarks' deliveries, so that every claim
// is a first claim.
var benchDeliveries atomic.Int64

func claimCommit(b *testing.B, store *dedup.Store) {
	ctx := context.Background()
	rec := dedup.Record{Key: "bench-durability", DeliveryID: strconv.FormatInt(benchDeliveries.Add(1), 10)}
	c, err := store.Claim(ctx, rec, "t", time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	if c.State != dedup.Granted {
		b.Fatalf("claim %s: state %v, want granted", rec.DeliveryID, c.State)
	}
	if err := store.Commit(ctx, rec, "t", "HTTP 200", dedup.Clean); err != nil {
		b.Fatal(err)
	}
}
