package workflows_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/workflows"
)

// TestReplayRecordedHistories replays histories recorded from real runs
// (see README, "Replay tests") against today's workflow code. A failure means
// a change would break notifications that are running when it is deployed.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files, "no recorded histories in testdata/")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(workflows.New(workflows.DefaultPolicy()).Run, workflow.RegisterOptions{Name: workflows.Name})
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}

func rejectAll(onceflow.Notification) error {
	return &onceflow.ValidationError{Field: "deliveries[0].to", Reason: "is refused by tomorrow's rules"}
}

func acceptAll(onceflow.Notification) error { return nil }

// TestReplayIgnoresChangedValidationRules replays every recorded history
// under validation rules that refuse everything and under rules that accept
// everything: a notification's validity is decided once, when it starts, so
// no later change of the rules (or of Go's URL and address parsing) can
// break a running notification.
func TestReplayIgnoresChangedValidationRules(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	require.NoError(t, err)
	for name, validate := range map[string]func(onceflow.Notification) error{"reject all": rejectAll, "accept all": acceptAll} {
		for _, f := range files {
			t.Run(name+"/"+filepath.Base(f), func(t *testing.T) {
				r := worker.NewWorkflowReplayer()
				r.RegisterWorkflowWithOptions(workflows.NewWithValidator(workflows.DefaultPolicy(), validate).Run, workflow.RegisterOptions{Name: workflows.Name})
				require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
			})
		}
	}
}

// TestReplayCatchesAnIncompatibleChange shows that the replay test can fail:
// a workflow that sleeps before delivering does not match the histories.
func TestReplayCatchesAnIncompatibleChange(t *testing.T) {
	changed := func(ctx workflow.Context, n onceflow.Notification) (onceflow.Result, error) {
		if err := workflow.Sleep(ctx, time.Second); err != nil {
			return onceflow.Result{}, err
		}
		return workflows.New(workflows.DefaultPolicy()).Run(ctx, n)
	}
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(changed, workflow.RegisterOptions{Name: workflows.Name})
	require.Error(t, r.ReplayWorkflowHistoryFromJSONFile(nil, "testdata/retried_after_500.json"))
}
