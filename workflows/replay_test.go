package workflows_test

import (
	"encoding/base64"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/broadcast"
	"github.com/onceflow/onceflow/codec"
	"github.com/onceflow/onceflow/digest"
	"github.com/onceflow/onceflow/digest/window"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/workflows"
)

// replayed names, for each directory under testdata/, the workflow whose
// recorded histories it holds and the function that runs it today. A
// workflow that moves to another package changes its line here only.
var replayed = map[string]struct {
	name string
	run  any
}{
	".":         {workflows.Name, workflows.New(workflows.DefaultPolicy()).Run},
	"broadcast": {broadcast.WorkflowName, broadcast.NewWorkflow(workflows.DefaultPolicy()).Run},
	"digest":    {digest.WorkflowName, window.New(workflows.DefaultPolicy()).Run},
}

// TestReplayRecordedHistories replays every history under testdata/,
// recorded from real runs (`make record-histories`, see e2e/doc.go), against
// today's workflow code. A failure means a change would break workflows
// that are running when it is deployed: notifications (testdata/), their
// digests' events among them, broadcasts (testdata/broadcast/) and digests
// (testdata/digest/).
func TestReplayRecordedHistories(t *testing.T) {
	var files []string
	require.NoError(t, filepath.WalkDir("testdata", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return err
	}))
	seen := map[string]int{}
	for _, f := range files {
		rel, err := filepath.Rel("testdata", filepath.Dir(f))
		require.NoError(t, err)
		seen[rel]++
		t.Run(filepath.ToSlash(strings.TrimPrefix(f, "testdata"+string(filepath.Separator))), func(t *testing.T) {
			require.Equal(t, ".json", filepath.Ext(f), "testdata holds recorded histories only")
			w, ok := replayed[rel]
			require.True(t, ok, "no workflow replays the histories in testdata/%s: add it to replayed", rel)
			r := replayerFor(t, f)
			r.RegisterWorkflowWithOptions(w.run, workflow.RegisterOptions{Name: w.name})
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
	for dir := range replayed {
		assert.NotZero(t, seen[dir], "no recorded histories in testdata/%s", dir)
	}
}

// codecPrefix marks histories recorded with the payload codec and
// testenv.CodecKeys (starter's codec tests record them).
const codecPrefix = "codec_"

// replayerFor replays the history file f with the data and failure
// converters it was recorded with.
func replayerFor(t *testing.T, f string) worker.WorkflowReplayer {
	t.Helper()
	var opts worker.WorkflowReplayerOptions
	if strings.HasPrefix(filepath.Base(f), codecPrefix) {
		keys, err := codec.ParseKeys(testenv.CodecKeys)
		require.NoError(t, err)
		opts.DataConverter, opts.FailureConverter = codec.DataConverter(keys), codec.FailureConverter(keys)
	}
	r, err := worker.NewWorkflowReplayerWithOptions(opts)
	require.NoError(t, err)
	return r
}

// TestReplayOfEncryptedHistoryNeedsItsKey shows that the codec histories are
// encrypted: without the key, or with another key, they do not replay.
func TestReplayOfEncryptedHistoryNeedsItsKey(t *testing.T) {
	files, err := filepath.Glob("testdata/" + codecPrefix + "*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files, "no histories recorded with the codec in testdata/")
	other, err := codec.ParseKeys("test-1:" + base64.StdEncoding.EncodeToString(make([]byte, 32)))
	require.NoError(t, err)
	for _, f := range files {
		for name, opts := range map[string]worker.WorkflowReplayerOptions{
			"no codec":    {},
			"another key": {DataConverter: codec.DataConverter(other), FailureConverter: codec.FailureConverter(other)},
		} {
			t.Run(name+"/"+filepath.Base(f), func(t *testing.T) {
				r, err := worker.NewWorkflowReplayerWithOptions(opts)
				require.NoError(t, err)
				r.RegisterWorkflowWithOptions(workflows.New(workflows.DefaultPolicy()).Run, workflow.RegisterOptions{Name: workflows.Name})
				require.Error(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
			})
		}
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
				r := replayerFor(t, f)
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
