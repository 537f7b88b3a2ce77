package broadcast_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/onceflow/onceflow/broadcast"
	"github.com/onceflow/onceflow/broadcast/recipients"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/internal/teststack"
	"github.com/onceflow/onceflow/starter"
	"github.com/onceflow/onceflow/worker"
)

// TestBroadcastChunkOutlastsAHeartbeatAnsweredNotFound: the Go SDK ends an
// activity's context when a heartbeat is answered NotFound, as a Temporal
// server recovering from a crash may answer for an attempt that is still
// live. The chunk must not take that for a cancel request: its unsent
// recipients are retried, and every recipient is delivered (none
// counted cancelled, which would be a silent loss).
func TestBroadcastChunkOutlastsAHeartbeatAnsweredNotFound(t *testing.T) {
	// Each recipient is answered 500ms late and sent one at a time, so the
	// chunk runs for about 15s: the SDK sends heartbeats at most every 8s
	// (80% of the chunk's 10s heartbeat timeout), so some go out while it
	// sends.
	rcv := testenv.NewReceiver(t, testenv.Dedup(), testenv.Slow(1, 500*time.Millisecond))
	var heartbeats, refused atomic.Int32
	notFoundOnce := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if strings.HasSuffix(method, "/RecordActivityTaskHeartbeat") {
			// The first heartbeat that reaches the server comes once
			// sends are under way.
			if heartbeats.Add(1) == 1 {
				refused.Add(1)
				return status.Error(codes.NotFound, "workflow execution not found (the test's refusal)")
			}
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	tc, err := client.Dial(client.Options{
		HostPort: servers.Temporal.GetFrontendHostPort(), Namespace: servers.Temporal.GetDefaultNamespace(),
		ConnectionOptions: client.ConnectionOptions{DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(notFoundOnce)}},
	})
	require.NoError(t, err)
	t.Cleanup(tc.Close)

	queue := "q-" + strings.ReplaceAll(t.Name(), "/", "-")
	acts, rdb, err := worker.Activities(servers.WorkerConfig())
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	acts.Broadcasts.InFlight = 1
	w := worker.New(tc, queue, teststack.Policy, acts)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	const total = 30
	c := broadcast.NewClient(starter.New(tc, queue), recipients.New(servers.Redis.Client(t)), time.Hour).WithChunks(100, 1)
	b := broadcastTo(t, rcv.URL, total)
	ctx := teststack.Context(t)
	_, err = c.Send(ctx, b)
	require.NoError(t, err)
	st, err := c.Wait(ctx, b.Key, 200*time.Millisecond, nil)
	require.NoError(t, err)
	require.EqualValues(t, 1, refused.Load(), "a heartbeat was answered NotFound")
	assert.Equal(t, "completed", st.Execution)
	assert.Zero(t, st.Cancelled, "recipients counted cancelled: %s", st.Progress())
	assert.Equal(t, total, st.Delivered+st.Suppressed, st.Progress())
	for _, id := range deliveryIDs(b) {
		assert.Equal(t, 1, rcv.Applied(id), "recipient %s reached the receiver once", id)
	}
}
