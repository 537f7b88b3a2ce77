package redisproc_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/internal/redisproc"
)

// A TLS server with a password serves TLS only, refuses a client without
// its password or without a client certificate when it requires one, and
// its replica syncs over TLS with the password.
func TestTLSServerWithPasswordAndItsReplica(t *testing.T) {
	ctx := context.Background()
	certs, err := redisproc.NewTLS(filepath.Join(t.TempDir(), "tls"))
	require.NoError(t, err)
	certs.AuthClients = true
	s, err := redisproc.StartWith(t.TempDir(), 0, redisproc.Options{TLS: &certs, Password: "s3cret"})
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	assert.Equal(t, "rediss://:s3cret@"+s.Addr+"/0", s.URL())

	rdb, err := s.Client()
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	require.NoError(t, rdb.Set(ctx, "k", "v", 0).Err())

	plain := redis.NewClient(&redis.Options{Addr: s.Addr, Password: "s3cret", MaxRetries: -1})
	t.Cleanup(func() { _ = plain.Close() })
	require.Error(t, plain.Ping(ctx).Err(), "no plain TCP on the port")

	cfg, err := certs.ClientConfig()
	require.NoError(t, err)
	noPass := redis.NewClient(&redis.Options{Addr: s.Addr, TLSConfig: cfg, MaxRetries: -1})
	t.Cleanup(func() { _ = noPass.Close() })
	assert.ErrorContains(t, noPass.Get(ctx, "k").Err(), "NOAUTH")

	cfg.Certificates = nil
	noCert := redis.NewClient(&redis.Options{Addr: s.Addr, Password: "s3cret", TLSConfig: cfg, MaxRetries: -1})
	t.Cleanup(func() { _ = noCert.Close() })
	assert.Error(t, noCert.Ping(ctx).Err(), "a client without a certificate is refused")

	replica, err := s.StartReplica(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(replica.Stop)
	rr, err := replica.Client()
	require.NoError(t, err)
	t.Cleanup(func() { _ = rr.Close() })
	got, err := rr.Get(ctx, "k").Result()
	require.NoError(t, err)
	assert.Equal(t, "v", got)
}

// A TLS cluster with a password forms (its bus and replication over TLS)
// and serves a cluster client that trusts its CA.
func TestTLSClusterWithPassword(t *testing.T) {
	ctx := context.Background()
	certs, err := redisproc.NewTLS(filepath.Join(t.TempDir(), "tls"))
	require.NoError(t, err)
	c, err := redisproc.StartClusterWith(t.TempDir(), 3, 1, redisproc.Options{TLS: &certs, Password: "s3cret"})
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	assert.Regexp(t, `^rediss\+cluster://:s3cret@127\.0\.0\.1:\d+,`, c.URL())
	cfg, err := certs.ClientConfig()
	require.NoError(t, err)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), Password: "s3cret", TLSConfig: cfg})
	t.Cleanup(func() { _ = rdb.Close() })
	shards, err := rdb.ClusterShards(ctx).Result()
	require.NoError(t, err)
	assert.Len(t, shards, 3)
	for _, key := range []string{"a", "b", "c", "d"} {
		require.NoError(t, rdb.Set(ctx, key, "1", 0).Err())
	}
}
