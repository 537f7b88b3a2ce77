package redisconn_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/internal/redisproc"
	"github.com/onceflow/onceflow/ratelimit"
	"github.com/onceflow/onceflow/redisconn"
)

const redisPassword = "tls-s3cret"

// secureRedis is one TLS-only redis-server and one TLS-only 3-primary
// cluster with a replica each, both requiring redisPassword, their
// certificates signed by one test CA.
type secureRedis struct {
	certs   redisproc.TLS
	single  *redisproc.Server
	cluster *redisproc.Cluster
}

func startSecureRedis(t *testing.T, authClients bool) secureRedis {
	t.Helper()
	if !redisproc.Available() {
		t.Fatal("redis-server is not installed: these tests need a real one (scripts/deps.sh installs it; Debian: apt-get install -y redis-server)")
	}
	certs, err := redisproc.NewTLS(filepath.Join(t.TempDir(), "tls"))
	require.NoError(t, err)
	certs.AuthClients = authClients
	opts := redisproc.Options{TLS: &certs, Password: redisPassword}
	single, err := redisproc.StartWith(t.TempDir(), 0, opts)
	require.NoError(t, err)
	t.Cleanup(single.Stop)
	cluster, err := redisproc.StartClusterWith(t.TempDir(), 3, 1, opts)
	require.NoError(t, err)
	t.Cleanup(cluster.Stop)
	return secureRedis{certs: certs, single: single, cluster: cluster}
}

// urls are REDIS_URLs as a user writes them, with password: the single
// server's and the cluster's (two of its nodes as seeds).
func (r secureRedis) urls(scheme, clusterScheme, password string) map[string]string {
	return map[string]string{
		"single":  scheme + "://:" + password + "@" + r.single.Addr + "/0",
		"cluster": clusterScheme + "://:" + password + "@" + r.cluster.Nodes[0].Addr + "," + r.cluster.Nodes[1].Addr,
	}
}

// claimCommitAndReserve does what the worker does with REDIS_URL url: its
// start-up checks, a delivery claimed, committed and then found sent, and
// a rate-limit slot reserved.
func claimCommitAndReserve(t *testing.T, name, url string) {
	t.Helper()
	ctx := context.Background()
	rdb, err := open(url, false)
	require.NoError(t, err, name)
	t.Cleanup(func() { _ = rdb.Close() })
	require.NoError(t, redisconn.Ping(ctx, rdb), name)
	_, err = dedup.CheckDurability(ctx, rdb, 0)
	require.NoError(t, err, name)

	store := dedup.New(rdb, time.Hour)
	rec := dedup.Record{Key: "order-42", DeliveryID: "dlv_tls_" + name, Fingerprint: "fp"}
	c, err := store.Claim(ctx, rec, "attempt-1", time.Minute)
	require.NoError(t, err, name)
	require.Equal(t, dedup.Granted, c.State, name)
	require.NoError(t, store.Commit(ctx, rec, "attempt-1", "HTTP 200", dedup.Clean), name)
	c, err = store.Claim(ctx, rec, "attempt-2", time.Minute)
	require.NoError(t, err, name)
	assert.Equal(t, dedup.AlreadySent, c.State, name)
	assert.Equal(t, "HTTP 200", c.Receipt, name)

	l, err := ratelimit.New(rdb, "sms", 1)
	require.NoError(t, err, name)
	_, ok, err := l.Reserve(ctx, time.Minute)
	require.NoError(t, err, name)
	assert.True(t, ok, name)
}

// open loads the Redis settings of the process environment with
// REDIS_URL url, as a process does, and opens them.
func open(url string, contextTimeout bool) (redis.UniversalClient, error) {
	cfg, err := redisconn.Load(func(name string) string {
		if name == redisconn.EnvURL {
			return url
		}
		return os.Getenv(name)
	})
	if err != nil {
		return nil, err
	}
	return cfg.Open(contextTimeout)
}

func ping(t *testing.T, url string) error {
	t.Helper()
	rdb, err := open(url, true)
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return redisconn.Ping(ctx, rdb)
}

// A user's rediss:// and rediss+cluster:// REDIS_URL with a password,
// the servers' private CA trusted with ONCEFLOW_REDIS_CA_FILE, serve the
// worker as a plain Redis does: its start-up checks pass, a delivery is
// claimed, committed and then found sent, and a rate-limit slot is
// reserved. Security faults are refused with errors that say what failed
// and never show a password.
func TestRedisWithTLSAndPassword(t *testing.T) {
	r := startSecureRedis(t, false)

	t.Run("dedup and rate limit work", func(t *testing.T) {
		t.Setenv(redisconn.EnvCAFile, r.certs.CAFile)
		for name, url := range r.urls("rediss", "rediss+cluster", redisPassword) {
			claimCommitAndReserve(t, name, url)
		}
	})

	t.Run("a wrong password is refused without being shown", func(t *testing.T) {
		t.Setenv(redisconn.EnvCAFile, r.certs.CAFile)
		for name, url := range r.urls("rediss", "rediss+cluster", "wr0ng-pa55") {
			err := ping(t, url)
			require.Error(t, err, name)
			assert.Contains(t, err.Error(), "WRONGPASS", name)
			assert.NotContains(t, err.Error(), "wr0ng-pa55", name)
			assert.NotContains(t, err.Error(), redisPassword, name)
		}
	})

	t.Run("a certificate the trusted CA did not sign is refused", func(t *testing.T) {
		other, err := redisproc.NewTLS(filepath.Join(t.TempDir(), "other"))
		require.NoError(t, err)
		for _, ca := range []string{other.CAFile, ""} { // another CA; the system's
			t.Setenv(redisconn.EnvCAFile, ca)
			for name, url := range r.urls("rediss", "rediss+cluster", redisPassword) {
				err := ping(t, url)
				require.Error(t, err, name)
				assert.Contains(t, err.Error(), "certificate signed by unknown authority", name)
				assert.NotContains(t, err.Error(), redisPassword, name)
			}
		}
	})

	t.Run("a URL without TLS fails against TLS-only servers", func(t *testing.T) {
		for name, url := range r.urls("redis", "redis+cluster", redisPassword) {
			err := ping(t, url)
			require.Error(t, err, name)
			assert.Contains(t, err.Error(), "if it serves TLS only, REDIS_URL must start with rediss:// or rediss+cluster://", name)
			assert.NotContains(t, err.Error(), redisPassword, name)
		}
	})

	t.Run("a CA for a URL without TLS is refused before dialling", func(t *testing.T) {
		t.Setenv(redisconn.EnvCAFile, r.certs.CAFile)
		for name, url := range r.urls("redis", "redis+cluster", redisPassword) {
			_, err := open(url, false)
			require.Error(t, err, name)
			assert.Contains(t, err.Error(), redisconn.EnvCAFile+" is set but REDIS_URL=", name)
			assert.Contains(t, err.Error(), "does not use TLS", name)
			assert.NotContains(t, err.Error(), redisPassword, name)
		}
	})

	t.Run("a CA file that is missing or holds no certificate is refused", func(t *testing.T) {
		notPEM := filepath.Join(t.TempDir(), "ca.txt")
		require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))
		for ca, want := range map[string]string{
			filepath.Join(t.TempDir(), "missing.crt"): "no such file",
			notPEM: "holds no PEM certificate",
		} {
			t.Setenv(redisconn.EnvCAFile, ca)
			for name, url := range r.urls("rediss", "rediss+cluster", redisPassword) {
				_, err := open(url, false)
				require.Error(t, err, name)
				assert.True(t, strings.HasPrefix(err.Error(), redisconn.EnvCAFile), "%s: %v", name, err)
				assert.Contains(t, err.Error(), want, name)
			}
		}
	})
}

// Against servers that require a client certificate (tls-auth-clients
// yes, redis-server's default with TLS), the worker works with the one
// ONCEFLOW_REDIS_CERT_FILE and ONCEFLOW_REDIS_KEY_FILE name, and fails
// without it.
func TestRedisWithClientCertificates(t *testing.T) {
	r := startSecureRedis(t, true)
	t.Setenv(redisconn.EnvCAFile, r.certs.CAFile)
	urls := r.urls("rediss", "rediss+cluster", redisPassword)

	for name, url := range urls {
		err := ping(t, url)
		require.Error(t, err, "%s: no client certificate", name)
		assert.Contains(t, err.Error(), "tls: certificate required", name)
		assert.NotContains(t, err.Error(), redisPassword, name)
	}

	t.Setenv(redisconn.EnvCertFile, r.certs.ClientCertFile)
	for name, url := range urls {
		_, err := open(url, false)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), "ONCEFLOW_REDIS_CERT_FILE and ONCEFLOW_REDIS_KEY_FILE go together", name)
	}

	t.Setenv(redisconn.EnvKeyFile, r.certs.ClientKeyFile)
	for name, url := range urls {
		claimCommitAndReserve(t, name, url)
	}
}
