package dedup_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/internal/testenv"
)

// clusterClient is the shared backend's cluster client, on the cluster pass
// of the tests; a test that needs one skips the single-server pass.
func clusterClient(t *testing.T) *redis.ClusterClient {
	t.Helper()
	if server.Cluster == nil {
		t.Skip("slots and per-primary replicas exist only on a cluster: runs in the cluster pass")
	}
	return server.Cluster.Client(t)
}

// Every key the protocol writes for one notification, whatever its key
// looks like, hashes to one slot: its scripts touch the record and the
// fingerprint key together, and would fail with CROSSSLOT otherwise.
func TestRecordsOfANotificationShareOneSlot(t *testing.T) {
	ctx := context.Background()
	rdb := clusterClient(t)
	store := dedup.New(rdb, time.Hour)
	// A key that starts with "}" would leave the hash tag empty, and Redis
	// would hash each key whole.
	bcast := onceflow.BroadcastLedgerKey(onceflow.ScopedKey("tenant-a", "sale"))
	for _, key := range []string{t.Name(), "}" + t.Name(), "}{x}", "tenant-a@order-1", bcast} {
		ids := []string{"dlv_a", "dlv_b", "dlv_c", "dlv_d"}
		if key == bcast { // the records of a broadcast's recipients
			for i := range ids {
				ids[i] = onceflow.RecipientDeliveryID("tenant-a@sale", "u"+strconv.Itoa(i))
			}
		}
		for i, id := range ids {
			rec := dedup.Record{Key: key, DeliveryID: id, Fingerprint: "fp1"}
			c, err := store.Claim(ctx, rec, "attempt-1", time.Minute)
			require.NoError(t, err, key)
			require.Equal(t, dedup.Granted, c.State, key)
			if i == len(ids)-1 {
				require.NoError(t, store.Release(ctx, rec, "attempt-1", true), key)
				continue
			}
			require.NoError(t, store.Commit(ctx, rec, "attempt-1", "HTTP 200", dedup.Clean), key)
			c, err = store.Claim(ctx, rec, "attempt-2", time.Minute)
			require.NoError(t, err, key)
			assert.Equal(t, dedup.AlreadySent, c.State, key)
		}
		fp, err := store.Fingerprint(ctx, key)
		require.NoError(t, err)
		assert.Equal(t, "fp1", fp)

		// What the protocol wrote: every key under the notification's
		// hash tag, on every primary.
		tag := key
		if strings.HasPrefix(key, "}") {
			tag = " " + key
		}
		keys, err := testenv.Keys(ctx, rdb, "onceflow:{"+escapeGlob(tag)+"}*")
		require.NoError(t, err)
		require.Len(t, keys, 5, "four records and the fingerprint of %q", key)
		slots := map[int64][]string{}
		for _, k := range keys {
			slot, err := rdb.ClusterKeySlot(ctx, k).Result()
			require.NoError(t, err)
			slots[slot] = append(slots[slot], k)
		}
		assert.Len(t, slots, 1, "the keys of %q by slot: %v", key, slots)
	}
}

func escapeGlob(s string) string {
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`, "]", `\]`).Replace(s)
}

// On a cluster, WAIT goes with the claim to the primary of the record's
// slot and counts that primary's replicas: one there acknowledges, two do
// not exist, and a claim that asks for two sends nothing.
func TestClaimWaitsForTheReplicaOfItsSlot(t *testing.T) {
	ctx := context.Background()
	rdb := clusterClient(t)
	for _, key := range []string{"a", "b", "c", "d", "e", "f"} { // spread over the primaries
		rec := dedup.Record{Key: t.Name() + key, DeliveryID: "dlv_test"}
		c, err := dedup.New(rdb, time.Hour, dedup.WaitReplicas(1, 0)).Claim(ctx, rec, "attempt-1", time.Minute)
		require.NoError(t, err)
		assert.Equal(t, dedup.Granted, c.State)

		rec.DeliveryID = "dlv_two"
		_, err = dedup.New(rdb, time.Hour, dedup.WaitReplicas(2, 100*time.Millisecond)).Claim(ctx, rec, "attempt-1", time.Minute)
		require.ErrorIs(t, err, dedup.ErrNotReplicated)
		assert.ErrorContains(t, err, "1 of 2 replicas")
		c, err = dedup.New(rdb, time.Hour).Claim(ctx, rec, "attempt-2", time.Minute)
		require.NoError(t, err)
		assert.Equal(t, dedup.Granted, c.State, "the unreplicated claim was released")
		assert.False(t, c.Ambiguous, "nothing was sent on it")
	}
}

// CheckDurability on a cluster checks every primary, and names the one a
// warning is about.
func TestDurabilityIsCheckedOnEveryPrimary(t *testing.T) {
	ctx := context.Background()
	rdb := clusterClient(t)
	warnings, err := dedup.CheckDurability(ctx, rdb, 1)
	require.NoError(t, err)
	assert.Empty(t, warnings, "AOF on and one replica per primary")

	warnings, err = dedup.CheckDurability(ctx, rdb, 2)
	require.NoError(t, err)
	require.Len(t, warnings, 3, "one per primary")
	for _, w := range warnings {
		assert.Contains(t, w, "cluster primary 127.0.0.1:")
		assert.Contains(t, w, "has 1 connected replicas")
	}
}
