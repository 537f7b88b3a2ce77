package redisconn

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A malformed REDIS_URL is reported without its password, whichever part
// of it is malformed: the worker prints this error and exits.
func TestBadRedisURLErrorsKeepThePasswordOut(t *testing.T) {
	for raw, says := range map[string]string{
		"redis://user:s3cret@host:notaport":      `invalid port ":notaport"`,
		"rediss://:s3cret@[::1":                  "missing ']'",
		"redis://user:s3cret@host:6379/x":        "invalid database number",
		"http://user:s3cret@host:6379":           "invalid URL scheme",
		"redis://u:s3cret@h:1/0?dial_timeout=zz": "invalid dial_timeout",
		"redis://u:s3%zzcret@h:1":                "user or password does not parse",
		"redis://u:s3cret%@h:1":                  "user or password does not parse",
		"u:s3cret@host":                          "REDIS_URL",
	} {
		_, err := ParseURL(raw)
		require.Error(t, err, raw)
		assert.NotContains(t, err.Error(), "s3", raw)
		assert.NotContains(t, err.Error(), "cret", raw)
		assert.Contains(t, err.Error(), says, raw)
		assert.Contains(t, err.Error(), EnvURL, raw)
		_, err = Load(urlEnv(raw))
		require.Error(t, err)
		assert.Contains(t, err.Error(), EnvURL, raw)
		assert.NotContains(t, err.Error(), "cret", raw)
		_, err = Config{RedisURL: raw}.Open(true)
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "cret", raw)
	}
	opts, err := ParseURL("redis://user:s3cret@host:6380/2")
	require.NoError(t, err)
	assert.Equal(t, "s3cret", opts.Password)
	assert.Equal(t, "redis://user:xxxxx@host:6380/2", Redact("redis://user:s3cret@host:6380/2"))
	assert.Equal(t, "redis://host:6380/2", Redact("redis://host:6380/2"))
	assert.Equal(t, "redis://user:xxxxx@host:6380/2", Config{RedisURL: "redis://user:s3cret@host:6380/2"}.Redacted())
}

// urlEnv is an environment with REDIS_URL=raw and nothing else.
func urlEnv(raw string) func(string) string {
	return func(name string) string {
		if name == EnvURL {
			return raw
		}
		return ""
	}
}

// Load reads every Redis variable once; unset, the worker's default URL
// is dialled, and a bad number of replicas names its variable.
func TestLoad(t *testing.T) {
	c, err := Load(urlEnv(""))
	require.NoError(t, err)
	assert.False(t, c.Configured())
	assert.Equal(t, DefaultURL, c.URL())
	assert.Zero(t, c.WaitReplicas)

	vars := map[string]string{EnvURL: "redis://h:1/0", "ONCEFLOW_REDIS_WAIT_REPLICAS": "2"}
	c, err = Load(func(name string) string { return vars[name] })
	require.NoError(t, err)
	assert.True(t, c.Configured())
	assert.Equal(t, 2, c.WaitReplicas)

	for _, bad := range []string{"-1", "two", "1.5"} {
		vars["ONCEFLOW_REDIS_WAIT_REPLICAS"] = bad
		_, err = Load(func(name string) string { return vars[name] })
		require.Error(t, err, bad)
		assert.True(t, strings.HasPrefix(err.Error(), "ONCEFLOW_REDIS_WAIT_REPLICAS="), "the error names the variable: %v", err)
		assert.Contains(t, err.Error(), bad)
	}
}

// A cluster's REDIS_URL lists its seed nodes after the credentials; the
// options are go-redis's, the TLS scheme verifies the first host's name,
// and a cluster has no database but 0.
func TestClusterURL(t *testing.T) {
	opts, err := ParseClusterURL("rediss+cluster://user:s3cret@redis-a.internal:7000,redis-b.internal:7001,[::1]:7002/?dial_timeout=3s")
	require.NoError(t, err)
	assert.Equal(t, []string{"redis-a.internal:7000", "redis-b.internal:7001", "[::1]:7002"}, opts.Addrs)
	assert.Equal(t, "user", opts.Username)
	assert.Equal(t, "s3cret", opts.Password)
	require.NotNil(t, opts.TLSConfig)
	assert.Equal(t, "redis-a.internal", opts.TLSConfig.ServerName)
	assert.Equal(t, 3*time.Second, opts.DialTimeout)

	opts, err = ParseClusterURL("redis+cluster://:p%40ss@h1,h2:7001/0")
	require.NoError(t, err)
	assert.Equal(t, []string{"h1:6379", "h2:7001"}, opts.Addrs, "the port defaults to 6379")
	assert.Equal(t, "p@ss", opts.Password)
	assert.Nil(t, opts.TLSConfig)

	rdb, err := Config{RedisURL: "redis+cluster://h1:7000"}.Open(false)
	require.NoError(t, err)
	assert.IsType(t, &redis.ClusterClient{}, rdb)
	_ = rdb.Close()
	rdb, err = Config{RedisURL: "redis://h1:7000/0"}.Open(false)
	require.NoError(t, err)
	assert.IsType(t, &redis.Client{}, rdb, "one server stays one server")
	_ = rdb.Close()

	for raw, says := range map[string]string{
		"redis+cluster://user:s3cret@h1:7000,,h2:7001":           "host 2 is empty",
		"redis+cluster://user:s3cret@h1:7000/3":                  "only database 0",
		"redis+cluster://user:s3cret@h1:7000,h2:x:y":             "host 2 (h2:x:y) is not host:port",
		"redis+cluster://user:s3cret@h1:7000/?dial_timeout=soon": "dial_timeout",
		"redis+cluster://user:s3cret@h1:7000/?db=2":              "unexpected option: db",
		"redis+cluster://user:s3%zzcret@h1:7000":                 "user or password does not parse",
	} {
		_, err := ParseClusterURL(raw)
		require.Error(t, err, raw)
		assert.Contains(t, err.Error(), says, raw)
		assert.Contains(t, err.Error(), EnvURL, raw)
		assert.NotContains(t, err.Error(), "cret", raw)
		_, err = Load(urlEnv(raw))
		require.Error(t, err, raw)
		assert.NotContains(t, err.Error(), "cret", raw)
	}
	assert.Equal(t, "redis+cluster://user:xxxxx@h1:7000,h2:7001/", Redact("redis+cluster://user:s3cret@h1:7000,h2:7001/"))
}
