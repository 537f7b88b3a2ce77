package testenv

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"
)

// WebhookSecret is a valid Standard Webhooks signing secret for tests.
var WebhookSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("onceflow-test-signing-key-32byte"))

// RecordEnv names the environment variable that, when set to a directory,
// makes RecordHistory write workflow histories there.
const RecordEnv = "ONCEFLOW_RECORD_HISTORIES"

// RecordHistory writes the history of the workflow run as JSON to
// $ONCEFLOW_RECORD_HISTORIES/name.json, for workflows' replay tests. It does
// nothing when the variable is unset.
func RecordHistory(t testing.TB, tc client.Client, workflowID, runID, name string) {
	t.Helper()
	dir := os.Getenv(RecordEnv)
	if dir == "" {
		return
	}
	events := History(t, tc, workflowID, runID)
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(events)
	if err != nil {
		t.Fatalf("encode history of %s: %v", workflowID, err)
	}
	path := filepath.Join(dir, name+".json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatalf("record %s: %v", path, err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	t.Logf("recorded %s (%d events)", path, len(events.Events))
}

// History reads the whole history of the workflow run as tc's server sends
// it: payloads are left as they are stored, whatever tc's data converter.
func History(t testing.TB, tc client.Client, workflowID, runID string) *historypb.History {
	t.Helper()
	var h historypb.History
	it := tc.GetWorkflowHistory(context.Background(), workflowID, runID, false, 0)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatalf("read history of %s: %v", workflowID, err)
		}
		h.Events = append(h.Events, e)
	}
	return &h
}
