package starter_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/starter"
)

// countingClient is a real Temporal client that counts the describes made
// through it.
type countingClient struct {
	client.Client
	describes atomic.Int32
}

func (c *countingClient) DescribeWorkflow(ctx context.Context, id, runID string) (*client.WorkflowExecutionDescription, error) {
	c.describes.Add(1)
	return c.Client.DescribeWorkflow(ctx, id, runID)
}

func TestFreshSendMakesOneRoundTripAndAJoinComparesPayloads(t *testing.T) {
	s := newStack(t, nil)
	counting := &countingClient{Client: s.TC}
	c := starter.New(counting, s.Queue)
	rcv := testenv.NewReceiver(t)
	n := webhookTo(t, rcv.URL)
	ctx := ctxFor(t)

	first, err := c.Send(ctx, n)
	require.NoError(t, err)
	assert.Zero(t, counting.describes.Load(), "a start that began a new run has nothing to compare")

	again, err := c.Send(ctx, n)
	require.NoError(t, err)
	assert.Equal(t, first, again, "the same payload joins the run")
	assert.EqualValues(t, 1, counting.describes.Load(), "a join compares the run's fingerprint")

	other := n
	other.Body = "Your order was cancelled."
	_, err = c.Send(ctx, other)
	var conflict *onceflow.ConflictError
	require.ErrorAs(t, err, &conflict)

	res, err := c.WaitRun(ctx, first)
	require.NoError(t, err)
	assert.Equal(t, onceflow.Delivered, res.Deliveries[0].Status, res.Deliveries[0].Reason)
	assert.Equal(t, 1, rcv.Raw(n.Deliveries[0].ID(n.Key)))
}

func TestWaitByKeyFollowsANotificationStartedByAnotherClient(t *testing.T) {
	s := newStack(t, nil)
	rcv := testenv.NewReceiver(t)
	n := webhookTo(t, rcv.URL)
	ctx := ctxFor(t)
	_, err := s.Client.Send(ctx, n)
	require.NoError(t, err)

	// Another process knows the key only.
	res, err := starter.New(s.TC, s.Queue).Wait(ctx, n.Key)
	require.NoError(t, err)
	require.Len(t, res.Deliveries, 1)
	assert.Equal(t, onceflow.Delivered, res.Deliveries[0].Status, res.Deliveries[0].Reason)
}

func TestCancelledNotificationIsSentAgainAndWaitRunKeepsToItsRun(t *testing.T) {
	s := newStack(t, nil)
	rcv := testenv.NewReceiver(t)
	n := webhookTo(t, rcv.URL)
	at := time.Now().Add(time.Hour)
	n.SendAt = &at
	ctx := ctxFor(t)
	cancelled, err := s.Client.Send(ctx, n)
	require.NoError(t, err)
	require.NoError(t, s.Client.Cancel(ctx, n.Key))
	_, err = s.Client.WaitRun(ctx, cancelled)
	var canceled *temporal.CanceledError
	require.ErrorAs(t, err, &canceled, "a cancelled run is an error to its waiter")

	// The reuse policy restarts a cancelled notification: a new run.
	n.SendAt = nil
	again, err := s.Client.Send(ctx, n)
	require.NoError(t, err)
	assert.NotEqual(t, cancelled.RunID, again.RunID)
	res, err := s.Client.WaitRun(ctx, again)
	require.NoError(t, err)
	assert.Equal(t, onceflow.Delivered, res.Deliveries[0].Status, res.Deliveries[0].Reason)

	_, err = s.Client.WaitRun(ctx, cancelled)
	require.ErrorAs(t, err, &canceled, "the cancelled run stays cancelled")
	byKey, err := s.Client.Wait(ctx, n.Key)
	require.NoError(t, err, "the key's current run is the new one")
	assert.Equal(t, res, byKey)
}
