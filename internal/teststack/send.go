package teststack

import (
	"testing"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/starter"
	"github.com/onceflow/onceflow/workflows"
)

// SendAndWait sends n, a notification with one delivery, waits for it and
// returns its start and that delivery's result.
func (s *Stack) SendAndWait(t *testing.T, n onceflow.Notification) (starter.Started, onceflow.DeliveryResult) {
	t.Helper()
	ctx := Context(t)
	started, err := s.Client.Send(ctx, n)
	require.NoError(t, err)
	res, err := s.Client.WaitRun(ctx, started)
	require.NoError(t, err)
	require.Len(t, res.Deliveries, 1)
	return started, res.Deliveries[0]
}

// StartNewRun starts n as a new run even though its key was used before, as
// happens once Temporal's retention has deleted the earlier run.
func (s *Stack) StartNewRun(t *testing.T, n onceflow.Notification) client.WorkflowRun {
	t.Helper()
	run, err := s.TC.ExecuteWorkflow(Context(t), client.StartWorkflowOptions{
		ID: workflows.ID(n.Key), TaskQueue: s.Queue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, workflows.Name, n)
	require.NoError(t, err)
	return run
}
