package redisproc_test

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/internal/redisproc"
)

// A started cluster serves every slot from three primaries, each with a
// replica that has synchronised, and keys of different slots land on
// different primaries.
func TestClusterHasThreePrimariesEachWithAReplica(t *testing.T) {
	ctx := context.Background()
	c, err := redisproc.StartCluster(t.TempDir(), 3, 1, "")
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	require.Len(t, c.Nodes, 6)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { _ = rdb.Close() })

	shards, err := rdb.ClusterShards(ctx).Result()
	require.NoError(t, err)
	require.Len(t, shards, 3)
	for _, sh := range shards {
		roles := map[string]int{}
		for _, n := range sh.Nodes {
			roles[n.Role]++
		}
		assert.Equal(t, map[string]int{"master": 1, "replica": 1}, roles)
	}
	primaries := map[string]bool{}
	for _, key := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		require.NoError(t, rdb.Set(ctx, key, "1", 0).Err())
		n, err := rdb.MasterForKey(ctx, key)
		require.NoError(t, err)
		primaries[n.Options().Addr] = true
	}
	assert.Len(t, primaries, 3, "eight keys spread over the three primaries")
	assert.True(t, strings.HasPrefix(c.URL(), "redis+cluster://127.0.0.1:"))
}
