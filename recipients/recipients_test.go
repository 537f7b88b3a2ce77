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
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/recipients"
)

var rds *testenv.Redis

func TestMain(m *testing.M) { testenv.RunWithRedis(m, &rds) }

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

	keys, err := rdb.Keys(ctx, "onceflow:{bcast:sale/*").Result()
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
