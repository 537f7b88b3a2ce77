package workflows_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/workflow"

	"github.com/onceflow/onceflow/digest"
	"github.com/onceflow/onceflow/workflows"
)

// TestReplayRecordedDigests replays the digest histories recorded from the
// starter's end-to-end tests (ONCEFLOW_RECORD_HISTORIES): a change to
// DigestWorkflow that would break a running digest fails here. The
// histories of events (notifications with a digest) are in testdata/ with
// the other notifications'.
func TestReplayRecordedDigests(t *testing.T) {
	files, err := filepath.Glob("testdata/digest/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files, "no recorded digest histories in testdata/digest/")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := replayerFor(t, f)
			r.RegisterWorkflowWithOptions(workflows.New(workflows.DefaultPolicy()).Digest, workflow.RegisterOptions{Name: digest.WorkflowName})
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}
