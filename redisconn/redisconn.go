// Package redisconn owns how an Onceflow process reaches Redis: one
// Config, read once from the environment (REDIS_URL for one server or a
// Redis Cluster, the TLS files, the replicas a write waits for), and
// opened once per process into the client that the dedup ledger, the
// recipient lists, the preferences, the feed and the rate limits share.
// The worker, the API and the CLI's commands that reach Redis all load it
// here, so that they read the same variables the same way.
package redisconn

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/onceflow/onceflow/internal/envvar"
)

// Config is how a process reaches Redis.
type Config struct {
	// RedisURL is REDIS_URL: one server (redis://, rediss://) or a Redis
	// Cluster (redis+cluster://, rediss+cluster://). Empty means the
	// variable is unset: the worker then uses DefaultURL, while the API
	// and the CLI run without Redis (see Configured).
	RedisURL string
	// CAFile, CertFile and KeyFile are the TLS files of EnvCAFile,
	// EnvCertFile and EnvKeyFile.
	CAFile, CertFile, KeyFile string
	// WaitReplicas makes a claim, and an in-app delivery's write, count
	// only once this many replicas have it (dedup.EnvWaitReplicas); 0
	// does not wait.
	WaitReplicas int
}

// Load reads the Redis settings through getenv (os.Getenv in production)
// and checks them without dialling: a URL that does not parse, TLS files
// with a URL without TLS, a CA or certificate file that cannot be read, or
// a bad number of replicas is an error that names its variable (and never
// the password).
func Load(getenv func(string) string) (Config, error) {
	c := Config{
		RedisURL: getenv(envvar.RedisURL.Name),
		CAFile:   getenv(envvar.RedisCAFile.Name),
		CertFile: getenv(envvar.RedisCertFile.Name),
		KeyFile:  getenv(envvar.RedisKeyFile.Name),
	}
	var err error
	if c.WaitReplicas, err = envvar.RedisWaitReplicas.Int(getenv, 0, "replicas"); err != nil {
		return Config{}, err
	}
	if _, _, err := c.options(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Configured reports whether REDIS_URL is set.
func (c Config) Configured() bool { return c.RedisURL != "" }

// URL is the URL Open dials: RedisURL, or DefaultURL when it is unset.
func (c Config) URL() string {
	if c.RedisURL == "" {
		return DefaultURL
	}
	return c.RedisURL
}

// Redacted is the URL Open dials without its password, for logs and errors.
func (c Config) Redacted() string { return Redact(c.URL()) }

// Open connects a client to the Redis at c.URL(): a redis.ClusterClient
// for a cluster's URL, a redis.Client otherwise. contextTimeout makes
// every command give up at its context's deadline (the API's reads, which
// must not stall a request); without it a command waits for Redis's reply
// up to go-redis's read timeout (the worker's commits, which should land
// even near the attempt's deadline). The caller closes the client.
func (c Config) Open(contextTimeout bool) (redis.UniversalClient, error) {
	single, cluster, err := c.options()
	if err != nil {
		return nil, err
	}
	if cluster != nil {
		cluster.ContextTimeoutEnabled = contextTimeout
		return redis.NewClusterClient(cluster), nil
	}
	single.ContextTimeoutEnabled = contextTimeout
	return redis.NewClient(single), nil
}

// options parses the URL and applies the TLS files: one of the two
// results is set.
func (c Config) options() (*redis.Options, *redis.ClusterOptions, error) {
	raw := c.URL()
	if IsClusterURL(raw) {
		opts, err := ParseClusterURL(raw)
		if err != nil {
			return nil, nil, err
		}
		if err := c.applyTLS(opts.TLSConfig, raw); err != nil {
			return nil, nil, err
		}
		return nil, opts, nil
	}
	opts, err := ParseURL(raw)
	if err != nil {
		return nil, nil, err
	}
	if err := c.applyTLS(opts.TLSConfig, raw); err != nil {
		return nil, nil, err
	}
	return opts, nil, nil
}

// Ping checks that Redis answers; on a cluster, that every primary does,
// so that every slot can be written.
func Ping(ctx context.Context, rdb redis.UniversalClient) error {
	var err error
	if c, ok := rdb.(*redis.ClusterClient); ok {
		err = c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			if err := n.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("primary %s: %w", n.Options().Addr, err)
			}
			return nil
		})
	} else {
		err = rdb.Ping(ctx).Err()
	}
	if err != nil {
		return plainToTLSHint(rdb, err)
	}
	return nil
}
