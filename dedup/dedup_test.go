package dedup_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/internal/redisproc"
	"github.com/onceflow/onceflow/internal/testenv"
)

// server is the Redis under test: the tests run once on a single server,
// then again on a Redis Cluster.
var server *testenv.Backend

func TestMain(m *testing.M) { testenv.RunOnBoth(m, &server) }

func newStore(t testing.TB, window time.Duration) (*dedup.Store, redis.UniversalClient) {
	rdb := server.Client(t)
	return dedup.New(rdb, window), rdb
}

func record(t testing.TB) dedup.Record {
	return dedup.Record{Key: t.Name(), DeliveryID: "dlv_test"}
}

func redisKey(rec dedup.Record) string {
	return "onceflow:{" + rec.Key + "}:" + rec.DeliveryID
}

func TestFirstClaimIsGranted(t *testing.T) {
	store, _ := newStore(t, time.Hour)
	c, err := store.Claim(context.Background(), record(t), "attempt-1", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, dedup.Granted, c.State)
	assert.False(t, c.Ambiguous)
}

func TestClaimAfterCommitReturnsReceipt(t *testing.T) {
	ctx := context.Background()
	store, _ := newStore(t, time.Hour)
	rec := record(t)
	_, err := store.Claim(ctx, rec, "attempt-1", time.Minute)
	require.NoError(t, err)
	require.NoError(t, store.Commit(ctx, rec, "attempt-1", "HTTP 200", dedup.Clean))

	c, err := store.Claim(ctx, rec, "attempt-2", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, dedup.AlreadySent, c.State)
	assert.Equal(t, "HTTP 200", c.Receipt)

	// Committing again with the same token (a retried reply) stays quiet.
	require.NoError(t, store.Commit(ctx, rec, "attempt-1", "HTTP 200", dedup.Clean))
}

func TestClaimTellsWhetherItsOwnDeliveryCommitted(t *testing.T) {
	ctx := context.Background()
	store, rdb := newStore(t, time.Hour)
	rec := record(t)
	_, err := store.Claim(ctx, rec, "wf/run-1/5/1", time.Minute)
	require.NoError(t, err)
	require.NoError(t, store.Commit(ctx, rec, "wf/run-1/5/1", "HTTP 200", dedup.Clean))

	for token, mine := range map[string]bool{
		"wf/run-1/5/2":  true,  // a later attempt of the same activity
		"wf/run-1/5/1":  true,  // the committing attempt itself
		"wf/run-2/5/1":  false, // another run of the workflow: a re-run
		"wf/run-1/6/1":  false, // another activity
		"other/run/5/2": false,
		"attempt-2":     false, // a token that names no delivery
	} {
		c, err := store.Claim(ctx, rec, token, time.Minute)
		require.NoError(t, err)
		assert.Equal(t, dedup.AlreadySent, c.State, token)
		assert.Equal(t, "HTTP 200", c.Receipt, token)
		assert.Equal(t, mine, c.Mine, token)
	}

	// A record committed before records kept the delivery reads as
	// another's.
	require.NoError(t, rdb.HDel(ctx, redisKey(rec), "w").Err())
	c, err := store.Claim(ctx, rec, "wf/run-1/5/2", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, dedup.AlreadySent, c.State)
	assert.False(t, c.Mine)
}

func TestConcurrentClaimsGrantExactlyOne(t *testing.T) {
	ctx := context.Background()
	store, _ := newStore(t, time.Hour)
	rec := record(t)
	var granted, busy atomic.Int32
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := store.Claim(ctx, rec, fmt.Sprintf("attempt-%d", i), time.Minute)
			if !assert.NoError(t, err) {
				return
			}
			switch c.State {
			case dedup.Granted:
				granted.Add(1)
			case dedup.Busy:
				busy.Add(1)
				assert.Greater(t, c.LeaseLeft, 50*time.Second)
				assert.LessOrEqual(t, c.LeaseLeft, time.Minute)
			}
		}()
	}
	wg.Wait()
	assert.EqualValues(t, 1, granted.Load())
	assert.EqualValues(t, 63, busy.Load())
}

func TestExpiredLeaseGivesAmbiguousReclaim(t *testing.T) {
	ctx := context.Background()
	store, _ := newStore(t, time.Hour)
	rec := record(t)
	c, err := store.Claim(ctx, rec, "attempt-1", 50*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, dedup.Granted, c.State)

	// attempt-1 dies between send and commit; its lease runs out.
	time.Sleep(80 * time.Millisecond)
	c, err = store.Claim(ctx, rec, "attempt-2", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, dedup.Granted, c.State)
	assert.True(t, c.Ambiguous, "a reclaim after an expired lease must say an earlier attempt may have sent")

	// The mark stays for every later claim, even after a clean release.
	require.NoError(t, store.Release(ctx, rec, "attempt-2", false))
	c, err = store.Claim(ctx, rec, "attempt-3", time.Minute)
	require.NoError(t, err)
	assert.True(t, c.Ambiguous)
}

func TestCommitKeepsWhatTheAttemptKnew(t *testing.T) {
	ctx := context.Background()
	store, _ := newStore(t, time.Hour)
	for _, outcome := range []dedup.Outcome{dedup.Clean, dedup.Confirmed, dedup.Unconfirmed} {
		rec := dedup.Record{Key: t.Name(), DeliveryID: "dlv_" + string(outcome)}
		_, err := store.Claim(ctx, rec, "attempt-1", time.Minute)
		require.NoError(t, err)
		require.NoError(t, store.Commit(ctx, rec, "attempt-1", "HTTP 200", outcome))
		c, err := store.Claim(ctx, rec, "attempt-2", time.Minute)
		require.NoError(t, err)
		assert.Equal(t, dedup.AlreadySent, c.State)
		assert.Equal(t, outcome, c.Outcome)
	}
}

func TestCommitByStaleTokenIsReported(t *testing.T) {
	ctx := context.Background()
	store, _ := newStore(t, time.Hour)
	rec := record(t)
	_, err := store.Claim(ctx, rec, "attempt-1", 30*time.Millisecond)
	require.NoError(t, err)
	time.Sleep(50 * time.Millisecond)
	_, err = store.Claim(ctx, rec, "attempt-2", time.Minute)
	require.NoError(t, err)

	// attempt-1 was only slow: it sent and now commits on attempt-2's lease.
	err = store.Commit(ctx, rec, "attempt-1", "HTTP 200 (first)", dedup.Clean)
	assert.ErrorIs(t, err, dedup.ErrTakenOver)
	// attempt-2 also sent; its commit after attempt-1's is a takeover too.
	err = store.Commit(ctx, rec, "attempt-2", "HTTP 200 (second)", dedup.Clean)
	assert.ErrorIs(t, err, dedup.ErrTakenOver)

	c, err := store.Claim(ctx, rec, "attempt-3", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, dedup.AlreadySent, c.State)
	assert.Equal(t, "HTTP 200 (first)", c.Receipt, "the first commit's receipt is kept")
	assert.Equal(t, dedup.Unconfirmed, c.Outcome, "a takeover is a possible duplicate")
}

func TestReleaseLetsNextClaimThroughAtOnce(t *testing.T) {
	ctx := context.Background()
	store, _ := newStore(t, time.Hour)
	rec := record(t)
	_, err := store.Claim(ctx, rec, "attempt-1", time.Hour)
	require.NoError(t, err)

	c, err := store.Claim(ctx, rec, "attempt-2", time.Hour)
	require.NoError(t, err)
	require.Equal(t, dedup.Busy, c.State)

	assert.ErrorIs(t, store.Release(ctx, rec, "attempt-2", false), dedup.ErrNotHolder, "only the holder may release")
	require.NoError(t, store.Release(ctx, rec, "attempt-1", false))

	c, err = store.Claim(ctx, rec, "attempt-2", time.Hour)
	require.NoError(t, err)
	assert.Equal(t, dedup.Granted, c.State)
	assert.False(t, c.Ambiguous, "a release for a definite non-send leaves no doubt")
}

func TestReleaseAfterPossibleSendStaysAmbiguous(t *testing.T) {
	ctx := context.Background()
	store, _ := newStore(t, time.Hour)
	rec := record(t)
	_, err := store.Claim(ctx, rec, "attempt-1", time.Hour)
	require.NoError(t, err)
	require.NoError(t, store.Release(ctx, rec, "attempt-1", true))

	c, err := store.Claim(ctx, rec, "attempt-2", time.Hour)
	require.NoError(t, err)
	assert.Equal(t, dedup.Granted, c.State)
	assert.True(t, c.Ambiguous)
}

func TestEveryWriteSetsTheWindowTTL(t *testing.T) {
	ctx := context.Background()
	window := 90 * time.Minute
	store, rdb := newStore(t, window)
	rec := record(t)
	assertTTL := func(step string) {
		t.Helper()
		ttl, err := rdb.PTTL(ctx, redisKey(rec)).Result()
		require.NoError(t, err)
		assert.Greater(t, ttl, window-time.Minute, step)
		assert.LessOrEqual(t, ttl, window, step)
	}
	shorten := func() { require.NoError(t, rdb.PExpire(ctx, redisKey(rec), time.Minute).Err()) }

	_, err := store.Claim(ctx, rec, "attempt-1", time.Minute)
	require.NoError(t, err)
	assertTTL("after claim")
	shorten()
	require.NoError(t, store.Release(ctx, rec, "attempt-1", true))
	assertTTL("after release")
	shorten()
	_, err = store.Claim(ctx, rec, "attempt-2", time.Minute)
	require.NoError(t, err)
	assertTTL("after reclaim")
	shorten()
	require.NoError(t, store.Commit(ctx, rec, "attempt-2", "HTTP 200", dedup.Clean))
	assertTTL("after commit")

	keys, err := testenv.Keys(ctx, rdb, "onceflow:{"+rec.Key+"}*")
	require.NoError(t, err)
	assert.Equal(t, []string{redisKey(rec)}, keys, "one record per delivery, under the notification's hash tag")
}

func fingerprintKey(key string) string { return "onceflow:{" + key + "}:fp" }

func TestClaimWithAnotherFingerprintIsAConflict(t *testing.T) {
	ctx := context.Background()
	store, rdb := newStore(t, time.Hour)
	a := dedup.Record{Key: t.Name(), DeliveryID: "dlv_shared", Fingerprint: "fp-a"}
	_, err := store.Claim(ctx, a, "a-attempt-1", time.Minute)
	require.NoError(t, err)
	require.NoError(t, store.Commit(ctx, a, "a-attempt-1", "HTTP 200", dedup.Clean))
	before, err := rdb.HGetAll(ctx, redisKey(a)).Result()
	require.NoError(t, err)

	// The same key with another payload, once Temporal has forgotten the
	// first notification: a recipient both payloads share, and a new one.
	b := a
	b.Fingerprint = "fp-b"
	c, err := store.Claim(ctx, b, "b-attempt-1", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, dedup.Conflict, c.State, "never AlreadySent for another payload")
	assert.Empty(t, c.Receipt)
	newRecipient := dedup.Record{Key: t.Name(), DeliveryID: "dlv_new", Fingerprint: "fp-b"}
	c, err = store.Claim(ctx, newRecipient, "b-attempt-1", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, dedup.Conflict, c.State, "the fingerprint belongs to the notification, not to one delivery")

	after, err := rdb.HGetAll(ctx, redisKey(a)).Result()
	require.NoError(t, err)
	assert.Equal(t, before, after, "a conflict writes nothing")
	n, err := rdb.Exists(ctx, redisKey(newRecipient)).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "a conflict creates no record")
	fp, err := store.Fingerprint(ctx, t.Name())
	require.NoError(t, err)
	assert.Equal(t, "fp-a", fp)

	// The first payload is still suppressed, and a claim without a
	// fingerprint (an attempt scheduled before they were passed on) skips
	// the check.
	c, err = store.Claim(ctx, a, "a-attempt-2", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, dedup.AlreadySent, c.State)
	assert.Equal(t, "HTTP 200", c.Receipt)
	unversioned := b
	unversioned.Fingerprint = ""
	c, err = store.Claim(ctx, unversioned, "old-attempt", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, dedup.AlreadySent, c.State)
}

func TestConflictComesBeforeALiveLease(t *testing.T) {
	ctx := context.Background()
	store, _ := newStore(t, time.Hour)
	a := dedup.Record{Key: t.Name(), DeliveryID: "dlv_test", Fingerprint: "fp-a"}
	c, err := store.Claim(ctx, a, "a-attempt-1", time.Hour)
	require.NoError(t, err)
	require.Equal(t, dedup.Granted, c.State)

	b := a
	b.Fingerprint = "fp-b"
	c, err = store.Claim(ctx, b, "b-attempt-1", time.Hour)
	require.NoError(t, err)
	assert.Equal(t, dedup.Conflict, c.State, "not Busy: waiting for the lease would not help")

	c, err = store.Claim(ctx, a, "a-attempt-2", time.Hour)
	require.NoError(t, err)
	assert.Equal(t, dedup.Busy, c.State, "the same payload waits for the lease as before")
}

func TestFingerprintIsRecordedByClaimsThatCarryOne(t *testing.T) {
	ctx := context.Background()
	store, _ := newStore(t, time.Hour)
	fp, err := store.Fingerprint(ctx, t.Name())
	require.NoError(t, err)
	assert.Empty(t, fp, "nothing claimed yet")

	_, err = store.Claim(ctx, dedup.Record{Key: t.Name(), DeliveryID: "dlv_old"}, "old-attempt", time.Minute)
	require.NoError(t, err)
	fp, err = store.Fingerprint(ctx, t.Name())
	require.NoError(t, err)
	assert.Empty(t, fp, "a claim without a fingerprint records none")

	_, err = store.Claim(ctx, dedup.Record{Key: t.Name(), DeliveryID: "dlv_test", Fingerprint: "fp-a"}, "attempt-1", time.Minute)
	require.NoError(t, err)
	fp, err = store.Fingerprint(ctx, t.Name())
	require.NoError(t, err)
	assert.Equal(t, "fp-a", fp)
}

func TestFingerprintLivesAsLongAsTheRecords(t *testing.T) {
	ctx := context.Background()
	window := 90 * time.Minute
	store, rdb := newStore(t, window)
	rec := dedup.Record{Key: t.Name(), DeliveryID: "dlv_test", Fingerprint: "fp-a"}
	assertTTL := func(step string) {
		t.Helper()
		ttl, err := rdb.PTTL(ctx, fingerprintKey(rec.Key)).Result()
		require.NoError(t, err)
		assert.Greater(t, ttl, window-time.Minute, step)
		assert.LessOrEqual(t, ttl, window, step)
	}
	shorten := func() { require.NoError(t, rdb.PExpire(ctx, fingerprintKey(rec.Key), time.Minute).Err()) }

	_, err := store.Claim(ctx, rec, "attempt-1", time.Minute)
	require.NoError(t, err)
	assertTTL("after claim")
	shorten()
	require.NoError(t, store.Release(ctx, rec, "attempt-1", false))
	assertTTL("after release")
	_, err = store.Claim(ctx, rec, "attempt-2", time.Minute)
	require.NoError(t, err)
	shorten()
	require.NoError(t, store.Commit(ctx, rec, "attempt-2", "HTTP 200", dedup.Clean))
	assertTTL("after commit")

	keys, err := testenv.Keys(ctx, rdb, "onceflow:{"+rec.Key+"}*")
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{redisKey(rec), fingerprintKey(rec.Key)}, keys, "under the notification's hash tag")
}

func TestUnreachableLedgerIsAnError(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer func() { _ = rdb.Close() }()
	_, err := dedup.New(rdb, time.Hour).Fingerprint(context.Background(), t.Name())
	assert.ErrorContains(t, err, t.Name())
}

func TestRecordSurvivesRedisRestart(t *testing.T) {
	server.OnlyOnce(t)
	for _, c := range []struct {
		name string
		down func(*testenv.Redis)
	}{
		{"SIGTERM", func(r *testenv.Redis) { r.Stop() }},
		// SIGKILL flushes nothing: only what the append-only file already
		// had survives, which is a write acknowledged KillSafeAfter before.
		{"SIGKILL", func(r *testenv.Redis) { time.Sleep(redisproc.KillSafeAfter); r.Kill() }},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			own, err := testenv.StartRedis(t.TempDir())
			require.NoError(t, err)
			t.Cleanup(own.Stop)
			rdb := own.Client(t)
			store := dedup.New(rdb, time.Hour)
			rec := record(t)
			_, err = store.Claim(ctx, rec, "attempt-1", time.Minute)
			require.NoError(t, err)
			require.NoError(t, store.Commit(ctx, rec, "attempt-1", "HTTP 200", dedup.Clean))

			c.down(own)
			_, err = store.Claim(ctx, rec, "attempt-2", time.Minute)
			require.Error(t, err, "Redis is down")
			require.NoError(t, own.Restart())
			got, err := store.Claim(ctx, rec, "attempt-2", time.Minute)
			require.NoError(t, err)
			assert.Equal(t, dedup.AlreadySent, got.State, "the append-only file must bring the record back")
			assert.Equal(t, "HTTP 200", got.Receipt)
		})
	}
}

func TestClaimRefusesTooShortLease(t *testing.T) {
	store, _ := newStore(t, time.Hour)
	_, err := store.Claim(context.Background(), record(t), "attempt-1", 0)
	assert.ErrorContains(t, err, "lease")
}

func TestUnreachableRedisIsAnError(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer func() { _ = rdb.Close() }()
	_, err := dedup.New(rdb, time.Hour).Claim(context.Background(), record(t), "attempt-1", time.Minute)
	require.Error(t, err)
	assert.False(t, errors.Is(err, dedup.ErrTakenOver))
	assert.ErrorContains(t, err, "dlv_test")
}

// benchClients is how many goroutines per GOMAXPROCS the benchmarks run:
// 25 on two cores gives the 50 clients that redis-benchmark uses.
const benchClients = 25

// BenchmarkClaimCommit measures the protocol's two round trips per delivery
// next to the least a dedup check can cost, one SET NX, on the same server.
func BenchmarkClaimCommit(b *testing.B) {
	ctx := context.Background()
	store, _ := newStore(b, time.Hour)
	b.ReportAllocs()
	b.SetParallelism(benchClients)
	b.RunParallel(func(pb *testing.PB) {
		var n int
		id := fmt.Sprintf("%p", &n)
		for pb.Next() {
			n++
			rec := dedup.Record{Key: "bench-claim", DeliveryID: fmt.Sprintf("%s-%d", id, n)}
			if _, err := store.Claim(ctx, rec, "t", time.Minute); err != nil {
				b.Fatal(err)
			}
			if err := store.Commit(ctx, rec, "t", "HTTP 200", dedup.Clean); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkSetNX(b *testing.B) {
	ctx := context.Background()
	rdb := server.Client(b)
	b.ReportAllocs()
	b.SetParallelism(benchClients)
	b.RunParallel(func(pb *testing.PB) {
		var n int
		id := fmt.Sprintf("%p", &n)
		for pb.Next() {
			n++
			if err := rdb.SetNX(ctx, fmt.Sprintf("bench-setnx:%s-%d", id, n), "HTTP 200", time.Hour).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A key that starts with "}" keeps the Redis keys it has always had on a
// single server, so that records written before clusters were supported
// are found: a record not found would mean a second send. (A cluster
// needs another form; TestRecordsOfANotificationShareOneSlot.)
func TestKeysStartingWithABraceKeepTheirFormatOnOneServer(t *testing.T) {
	ctx := context.Background()
	store, rdb := newStore(t, time.Hour)
	if _, cluster := rdb.(*redis.ClusterClient); cluster {
		return // the single server's format is what this test is about
	}
	rec := dedup.Record{Key: "}" + t.Name(), DeliveryID: "dlv_legacy", Fingerprint: "fp1"}
	// A record as an earlier version wrote it: committed, under the bare key.
	_, err := store.Claim(ctx, rec, "attempt-1", time.Minute)
	require.NoError(t, err)
	require.NoError(t, store.Commit(ctx, rec, "attempt-1", "HTTP 200", dedup.Clean))
	keys, err := testenv.Keys(ctx, rdb, "onceflow:{"+rec.Key+"}*")
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"onceflow:{" + rec.Key + "}:dlv_legacy", "onceflow:{" + rec.Key + "}:fp"}, keys)
}
