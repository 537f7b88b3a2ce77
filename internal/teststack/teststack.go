// Package teststack runs the parts of Onceflow that end-to-end tests need:
// one real Temporal server (temporaltest) and one real redis-server per test
// binary, and a worker per test on its own task queue, wired as
// `onceflow worker` wires it.
package teststack

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"

	"github.com/onceflow/onceflow/activities"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/providers/egress"
	"github.com/onceflow/onceflow/starter"
	"github.com/onceflow/onceflow/worker"
	"github.com/onceflow/onceflow/workflows"
)

// Servers are the Temporal and Redis servers a test binary shares.
type Servers struct {
	Redis    *testenv.Redis
	Temporal *temporaltest.TestServer
}

// Main is a TestMain: it starts the servers into s, registers Onceflow's
// search attributes, runs the tests, stops the servers and exits.
func Main(m *testing.M, s *Servers) {
	s.Redis = testenv.MustStartRedis()
	s.Temporal = temporaltest.NewServer()
	if err := worker.RegisterSearchAttributes(context.Background(), s.Temporal.GetDefaultClient(), s.Temporal.GetDefaultNamespace()); err != nil {
		fmt.Fprintln(os.Stderr, "teststack:", err)
		os.Exit(1)
	}
	code := m.Run()
	s.Temporal.Stop()
	s.Redis.Cleanup()
	os.Exit(code)
}

// Policy keeps attempts and retries short so that faults resolve in
// seconds.
var Policy = workflows.Policy{
	AttemptTimeout:   2 * time.Second,
	FirstRetry:       100 * time.Millisecond,
	MaxRetryInterval: time.Second,
	GiveUpAfter:      time.Minute,
}

// Stack is one worker on its own task queue and a client that starts
// notifications there.
type Stack struct {
	TC     client.Client
	Queue  string
	Client *starter.Client
}

// WorkerConfig is a worker configuration with webhooks only, on the shared
// Redis, whose egress guard allows loopback, where tests' receivers listen.
func (s *Servers) WorkerConfig() worker.Config {
	return worker.Config{
		RedisURL:      "redis://" + s.Redis.Addr + "/0",
		WebhookSecret: testenv.WebhookSecret,
		DedupWindow:   time.Hour,
		EgressAllow:   egress.Loopback(),
	}
}

// New starts a worker configured by cfg on a task queue named after the
// test, with its dedup store wrapped by wrap when wrap is not nil (for
// fault injection). The test's cleanup stops it.
func (s *Servers) New(t *testing.T, cfg worker.Config, wrap func(activities.Store) activities.Store) *Stack {
	t.Helper()
	return s.NewWithPolicy(t, cfg, Policy, wrap)
}

// NewWithPolicy is New with the workflow's retry policy given.
func (s *Servers) NewWithPolicy(t *testing.T, cfg worker.Config, policy workflows.Policy, wrap func(activities.Store) activities.Store) *Stack {
	t.Helper()
	queue := "q-" + strings.ReplaceAll(t.Name(), "/", "-")
	acts, rdb, err := worker.Activities(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	acts.LeaseMargin = time.Second
	if wrap != nil {
		acts.Store = wrap(acts.Store)
	}
	tc := s.Temporal.GetDefaultClient()
	w := worker.New(tc, queue, policy, acts)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return &Stack{TC: tc, Queue: queue, Client: starter.New(tc, queue)}
}

// Context is a context for one test's calls, cancelled with the test.
func Context(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
