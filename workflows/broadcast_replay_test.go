package workflows_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/workflow"

	"github.com/onceflow/onceflow/workflows"
)

// TestReplayRecordedBroadcasts replays the broadcast histories recorded
// from the starter's end-to-end tests (ONCEFLOW_RECORD_HISTORIES): a
// change to BroadcastWorkflow that would break a running broadcast fails
// here.
func TestReplayRecordedBroadcasts(t *testing.T) {
	files, err := filepath.Glob("testdata/broadcast/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files, "no recorded broadcast histories in testdata/broadcast/")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := replayerFor(t, f)
			r.RegisterWorkflowWithOptions(workflows.New(workflows.DefaultPolicy()).Broadcast, workflow.RegisterOptions{Name: workflows.BroadcastName})
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}
