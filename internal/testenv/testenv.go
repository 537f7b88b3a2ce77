// Package testenv starts the real servers that Onceflow's tests run against
// and stands in for the systems notifications go to. It fails the test,
// never skips it, when a server cannot be started.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onceflow/onceflow/internal/redisproc"
)

// Redis is a redis-server child process listening on loopback.
type Redis struct {
	*redisproc.Server
}

// StartRedis starts redis-server on a free loopback port with its files in
// dir. Stop it with Stop.
func StartRedis(dir string) (*Redis, error) {
	s, err := redisproc.Start(dir, 0)
	if err != nil {
		return nil, err
	}
	return &Redis{s}, nil
}

// MustStartRedis is StartRedis for a TestMain: it exits the test binary
// with a message when the server cannot start. Cleanup stops it.
func MustStartRedis() *Redis {
	dir, err := os.MkdirTemp("", "onceflow-redis-")
	if err == nil {
		var r *Redis
		if r, err = StartRedis(dir); err == nil {
			return r
		}
	}
	fmt.Fprintln(os.Stderr, "testenv:", err)
	os.Exit(1)
	return nil
}

// Cleanup stops the server and removes its files.
func (r *Redis) Cleanup() {
	r.Stop()
	_ = os.RemoveAll(r.Dir)
}

// Client returns a go-redis client for the server, closed with the test.
func (r *Redis) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("ping redis-server at %s: %v", r.Addr, err)
	}
	return c
}

// Buffer is a bytes.Buffer that many goroutines may write, for capturing
// the logs and output of servers running in a test.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }

// String returns what was written so far.
func (s *Buffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// RunWithRedis is a TestMain for packages whose tests share one
// redis-server: it starts it into *r, runs the tests, stops it and exits.
func RunWithRedis(m *testing.M, r **Redis) {
	*r = MustStartRedis()
	code := m.Run()
	(*r).Cleanup()
	os.Exit(code)
}
