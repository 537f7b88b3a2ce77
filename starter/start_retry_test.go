package starter_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/starter"
)

// TestSendOutlastsAStartAnsweredTooLate: the server starts the workflow
// but its answer comes after the call's deadline (the SDK gives each call
// 10 seconds whatever the caller's context allows, and CI's race pass saw
// a start outlast it). Send tries the start again, joins the run the
// first try started, and the notification is delivered once.
func TestSendOutlastsAStartAnsweredTooLate(t *testing.T) {
	s := newStack(t, nil)
	rcv := testenv.NewReceiver(t)
	var starts atomic.Int32
	lateFirstAnswer := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if strings.HasSuffix(method, "/StartWorkflowExecution") && starts.Add(1) == 1 && err == nil {
			return status.Error(codes.DeadlineExceeded, "context deadline exceeded")
		}
		return err
	}
	tc, err := client.Dial(client.Options{
		HostPort:          servers.Temporal.GetFrontendHostPort(),
		Namespace:         servers.Temporal.GetDefaultNamespace(),
		ConnectionOptions: client.ConnectionOptions{DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(lateFirstAnswer)}},
	})
	require.NoError(t, err)
	t.Cleanup(tc.Close)
	c := starter.New(tc, s.Queue)
	ctx := ctxFor(t)

	n := webhookTo(t, rcv.URL)
	started, err := c.Send(ctx, n)
	require.NoError(t, err, "a start whose answer came too late is tried again")
	assert.Equal(t, int32(2), starts.Load(), "one start timed out, one more found its run")

	res, err := c.WaitRun(ctx, started)
	require.NoError(t, err)
	assert.Equal(t, onceflow.Delivered, res.Status())
	assert.Equal(t, 1, rcv.AppliedFor(n.Key), "delivered once")
}
