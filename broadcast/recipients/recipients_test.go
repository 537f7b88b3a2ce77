package recipients_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/broadcast/recipients"
	"github.com/onceflow/onceflow/internal/testenv"
)

// rds is the Redis under test: the tests run once on a single server, then
// again on a Redis Cluster.
var rds *testenv.Backend

func TestMain(m *testing.M) { testenv.RunOnBoth(m, &rds) }

func list(n int) (recipients.List, onceflow.Broadcast) {
	b := onceflow.Broadcast{Key: "sale", Channel: onceflow.Webhook, Subject: "Sale", Body: "Now"}
	for i := range n {
		b.Recipients = append(b.Recipients, onceflow.Recipient{ID: fmt.Sprintf("u%d", i), To: fmt.Sprintf("https://x.example/%d", i)})
	}
	return recipients.List{Key: b.Key, Fingerprint: b.Fingerprint()}, b
}

func TestAListComesBackInChunksAndExpires(t *testing.T) {
	ctx := context.Background()
	rdb := rds.Client(t)
	s := recipients.New(rdb)
	l, b := list(25)
	require.NoError(t, s.Put(ctx, l, b, 10, time.Hour))

	h, err := s.Head(ctx, l)
	require.NoError(t, err)
	assert.Equal(t, recipients.Head{Channel: onceflow.Webhook, Subject: "Sale", Body: "Now", Total: 25, ChunkSize: 10}, h)
	assert.Equal(t, 3, h.Chunks())
	var got []onceflow.Recipient
	for i := range h.Chunks() {
		rs, err := s.Chunk(ctx, l, i)
		require.NoError(t, err)
		got = append(got, rs...)
	}
	assert.Equal(t, b.Recipients, got)

	keys, err := testenv.Keys(ctx, rdb, "onceflow:{bcast:sale/*")
	require.NoError(t, err)
	assert.Len(t, keys, 4, "a head and three chunks: %v", keys)
	for _, k := range keys {
		ttl, err := rdb.PTTL(ctx, k).Result()
		require.NoError(t, err)
		assert.InDelta(t, time.Hour.Seconds(), ttl.Seconds(), 60, k)
	}

	other := l
	other.Fingerprint = strings.Repeat("0", 64)
	_, err = s.Head(ctx, other)
	require.ErrorIs(t, err, recipients.ErrMissing, "another payload's list is another list")
	_, err = s.Chunk(ctx, l, 3)
	require.ErrorIs(t, err, recipients.ErrMissing)
}

func TestProblemsArePagedInOrderAndReplacedByARerun(t *testing.T) {
	ctx := context.Background()
	s := recipients.New(rds.Client(t))
	l, b := list(30)
	l.Key = "problems"
	require.NoError(t, s.Put(ctx, l, b, 10, time.Hour))
	problem := func(i int) recipients.Problem {
		return recipients.Problem{Index: i, ID: b.Recipients[i].ID, Status: onceflow.Failed, Reason: "HTTP 410"}
	}
	require.NoError(t, s.Record(ctx, l, 10, 10, []recipients.Problem{problem(12), problem(17)}))
	require.NoError(t, s.Record(ctx, l, 0, 10, []recipients.Problem{problem(3)}))
	require.NoError(t, s.Record(ctx, l, 20, 10, nil))

	page, next, err := s.Problems(ctx, l, 0, 2)
	require.NoError(t, err)
	assert.Equal(t, []recipients.Problem{problem(3), problem(12)}, page)
	assert.Equal(t, 17, next)
	page, next, err = s.Problems(ctx, l, next, 2)
	require.NoError(t, err)
	assert.Equal(t, []recipients.Problem{problem(17)}, page)
	assert.Zero(t, next, "the last page")

	// A re-run delivers 12: its problem goes, 17's stays.
	require.NoError(t, s.Record(ctx, l, 10, 10, []recipients.Problem{problem(17)}))
	page, _, err = s.Problems(ctx, l, 0, 10)
	require.NoError(t, err)
	assert.Equal(t, []recipients.Problem{problem(3), problem(17)}, page)
}

// On a cluster, the keys a broadcast's problems are recorded in together
// (one MULTI) share a slot with its head, and its chunks, each under its
// own hash tag, spread over the primaries.
func TestAListsKeysOnACluster(t *testing.T) {
	if rds.Cluster == nil {
		t.Skip("slots exist only on a cluster: runs in the cluster pass")
	}
	ctx := context.Background()
	rdb := rds.Cluster.Client(t)
	s := recipients.New(rdb)
	l, b := list(64)
	require.NoError(t, s.Put(ctx, l, b, 2, time.Hour))
	require.NoError(t, s.Record(ctx, l, 0, 4, []recipients.Problem{{Index: 1, ID: "u1", Status: onceflow.Failed}}))
	keys, err := testenv.Keys(ctx, rdb, "onceflow:{bcast:sale/"+l.Fingerprint[:16]+"*")
	require.NoError(t, err)
	require.Len(t, keys, 32+3, "32 chunks, the head, the problems' index and details")
	listSlots, chunkPrimaries := map[int64]bool{}, map[string]bool{}
	for _, k := range keys {
		slot, err := rdb.ClusterKeySlot(ctx, k).Result()
		require.NoError(t, err)
		if strings.HasSuffix(k, ":r") {
			n, err := rdb.MasterForKey(ctx, k)
			require.NoError(t, err)
			chunkPrimaries[n.Options().Addr] = true
			continue
		}
		listSlots[slot] = true
	}
	assert.Len(t, listSlots, 1, "head, pz and ph in one slot")
	assert.Len(t, chunkPrimaries, 3, "chunks spread over the three primaries")
	got, _, err := s.Problems(ctx, l, 0, 10)
	require.NoError(t, err)
	assert.Equal(t, []recipients.Problem{{Index: 1, ID: "u1", Status: onceflow.Failed}}, got)
}
