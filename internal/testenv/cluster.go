package testenv

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onceflow/onceflow/internal/redisproc"
)

// Cluster is a Redis Cluster of redis-server child processes on loopback:
// three primaries, each with one replica.
type Cluster struct {
	*redisproc.Cluster
	dir string
}

// StartCluster starts a 3-primary cluster with one replica per primary,
// its files in dir, that requires password unless it is "". Stop it with
// Stop.
func StartCluster(dir, password string) (*Cluster, error) {
	c, err := redisproc.StartCluster(dir, 3, 1, password)
	if err != nil {
		return nil, err
	}
	return &Cluster{Cluster: c, dir: dir}, nil
}

// Cleanup stops the nodes and removes their files.
func (c *Cluster) Cleanup() {
	c.Stop()
	_ = os.RemoveAll(c.dir)
}

// Client returns a go-redis cluster client, closed with the test.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), Password: c.Password})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error { return n.Ping(ctx).Err() }); err != nil {
		t.Fatalf("ping the redis cluster at %v: %v", c.Addrs(), err)
	}
	return rdb
}

// Backend is the Redis a package's tests run against, one of the two
// kinds that REDIS_URL accepts: a single server or a cluster. RunOnBoth
// runs the same tests on each.
type Backend struct {
	Single  *Redis   // set for a single server
	Cluster *Cluster // set for a cluster
}

// Client returns a client for the backend, closed with the test. It logs
// which backend it is, so that a failure says where it happened.
func (b *Backend) Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	if b.Cluster != nil {
		t.Logf("redis: a 3-primary cluster at %v", b.Cluster.Addrs())
		return b.Cluster.Client(t)
	}
	t.Logf("redis: a single server at %s", b.Single.Addr)
	return b.Single.Client(t)
}

// Keys returns the keys that match pattern on every primary: KEYS on a
// cluster client asks one node only.
func Keys(ctx context.Context, rdb redis.UniversalClient, pattern string) ([]string, error) {
	c, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return rdb.Keys(ctx, pattern).Result()
	}
	keys := make(chan []string, 64)
	err := c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		k, err := n.Keys(ctx, pattern).Result()
		keys <- k
		return err
	})
	close(keys)
	var all []string
	for k := range keys {
		all = append(all, k...)
	}
	return all, err
}

// RunOnBoth is a TestMain for packages whose tests must hold on a single
// redis-server and on a Redis Cluster alike: it runs the tests against a
// single server, then again against a 3-primary cluster, with *b pointing
// at the one under test, and exits with the first failure's code. Tests
// that only make sense on one of them skip the other, saying why.
func RunOnBoth(m *testing.M, b **Backend) {
	single := MustStartRedis()
	*b = &Backend{Single: single}
	code := m.Run()
	single.Cleanup()
	dir, err := os.MkdirTemp("", "onceflow-redis-cluster-")
	var c *Cluster
	if err == nil {
		c, err = StartCluster(dir, "")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "testenv: the same tests again, on a Redis Cluster (3 primaries, 3 replicas) at %v\n", c.Addrs())
	*b = &Backend{Cluster: c}
	if again := m.Run(); code == 0 {
		code = again
	}
	c.Cleanup()
	os.Exit(code)
}

// OnlyOnce skips, on the cluster pass of RunOnBoth, a test that does not
// use the shared backend (it starts servers of its own): it already ran
// in the single-server pass.
func (b *Backend) OnlyOnce(t testing.TB) {
	t.Helper()
	if b.Cluster != nil {
		t.Skip("uses servers of its own, not the shared backend: ran in the single-server pass")
	}
}
