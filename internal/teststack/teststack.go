// Package teststack runs the parts of Onceflow that end-to-end tests need:
// one real Temporal server (temporaltest) and one real redis-server per test
// binary, and a worker per test on its own task queue, wired as
// `onceflow worker` wires it.
package teststack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/temporal"
	"go.temporal.io/server/temporaltest"

	"github.com/onceflow/onceflow/activities"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/providers/egress"
	"github.com/onceflow/onceflow/redisconn"
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
	s.Temporal = NewTemporal()
	if err := worker.RegisterSearchAttributes(context.Background(), s.Temporal.GetDefaultClient(), s.Temporal.GetDefaultNamespace()); err != nil {
		fmt.Fprintln(os.Stderr, "teststack:", err)
		os.Exit(1)
	}
	code := m.Run()
	s.Temporal.Stop()
	s.Redis.Cleanup()
	os.Exit(code)
}

// NewTemporal starts a temporaltest server for Onceflow's tests. It moves
// its transfer queue's ack level every 100ms instead of every 30s: a
// delete of a closed workflow waits until the ack level has passed the
// workflow's close, so DeleteWorkflow would otherwise take about 30s.
func NewTemporal(opts ...temporaltest.TestServerOption) *temporaltest.TestServer {
	dc := dynamicconfig.StaticClient{
		// temporaltest's own setting, which this client replaces.
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): []dynamicconfig.ConstrainedValue{{Value: true}},
		dynamicconfig.TransferProcessorUpdateAckInterval.Key():      []dynamicconfig.ConstrainedValue{{Value: 100 * time.Millisecond}},
	}
	return temporaltest.NewServer(append(opts, temporaltest.WithBaseServerOptions(temporal.WithDynamicConfigClient(dc)))...)
}

// DeleteWorkflow deletes the workflow's runs, newest first, through
// Temporal's DeleteWorkflowExecution API, as the namespace's retention does
// once it has passed, until Temporal no longer knows the workflow.
func DeleteWorkflow(t testing.TB, tc client.Client, namespace, workflowID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	deleted := ""
	for {
		desc, err := tc.DescribeWorkflowExecution(ctx, workflowID, "")
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return
		}
		if err != nil {
			t.Fatalf("describe %s: %v", workflowID, err)
		}
		// Deletion is asynchronous; ask once per run. A delete that comes
		// before the ack level has passed the run's close is retried by
		// the server only 3s later: give the ack level (moved every
		// 100ms, see NewTemporal) time first.
		info := desc.GetWorkflowExecutionInfo()
		if closed := info.GetCloseTime(); closed != nil {
			time.Sleep(time.Until(closed.AsTime().Add(300 * time.Millisecond)))
		}
		if run := info.GetExecution().GetRunId(); run != deleted {
			_, err = tc.WorkflowService().DeleteWorkflowExecution(ctx, &workflowservice.DeleteWorkflowExecutionRequest{
				Namespace:         namespace,
				WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: workflowID, RunId: run},
			})
			if err != nil && !errors.As(err, &nf) {
				t.Fatalf("delete %s: %v", workflowID, err)
			}
			deleted = run
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s was not deleted within a minute", workflowID)
		case <-time.After(50 * time.Millisecond):
		}
	}
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
		Config:        redisconn.Config{RedisURL: "redis://" + s.Redis.Addr + "/0"},
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
	acts.Deliveries.LeaseMargin = time.Second
	acts.Deliveries.LookupSettle = 1500 * time.Millisecond
	if wrap != nil {
		acts.Deliveries.Store = wrap(acts.Deliveries.Store)
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
