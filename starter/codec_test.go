package starter_test

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"google.golang.org/protobuf/proto"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/codec"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/internal/teststack"
	"github.com/onceflow/onceflow/starter"
	"github.com/onceflow/onceflow/worker"
	"github.com/onceflow/onceflow/workflows"
)

// codecStack is a worker and a Go client that both encrypt payloads with
// testenv.CodecKeys, as they are wired when ONCEFLOW_CODEC_KEYS is set.
func codecStack(t *testing.T, cfg worker.Config) *teststack.Stack {
	t.Helper()
	keys, err := codec.ParseKeys(testenv.CodecKeys)
	require.NoError(t, err)
	tc := servers.Temporal.NewClientWithOptions(client.Options{
		DataConverter:    codec.DataConverter(keys),
		FailureConverter: codec.FailureConverter(keys),
		Logger:           sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	queue := "q-" + strings.ReplaceAll(t.Name(), "/", "-")
	acts, rdb, err := worker.Activities(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	w := worker.New(tc, queue, teststack.Policy, acts)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return &teststack.Stack{TC: tc, Queue: queue, Client: starter.New(tc, queue)}
}

// stored is everything Temporal keeps about a run as the server sends it to
// a client without the codec, in protobuf's binary form, where a payload's
// bytes appear as they are (JSON would hide them in base64): its history,
// its description (memo, search attributes, summary) and its visibility
// record.
func stored(t *testing.T, id, runID string) []byte {
	t.Helper()
	raw := servers.Temporal.GetDefaultClient()
	ctx := ctxFor(t)
	h := testenv.History(t, raw, id, runID)
	desc, err := raw.DescribeWorkflowExecution(ctx, id, runID)
	require.NoError(t, err)
	list, err := raw.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: servers.Temporal.GetDefaultNamespace(), Query: `WorkflowId="` + id + `"`,
	})
	require.NoError(t, err)
	var out []byte
	for _, m := range []proto.Message{h, desc, list} {
		b, err := proto.Marshal(m)
		require.NoError(t, err)
		out = append(out, b...)
	}
	return out
}

func assertNoPlaintext(t *testing.T, stored []byte, secrets ...string) {
	t.Helper()
	lower := bytes.ToLower(stored)
	for _, s := range secrets {
		assert.False(t, bytes.Contains(lower, []byte(strings.ToLower(s))), "%q is stored in clear", s)
	}
	assert.True(t, bytes.Contains(stored, []byte(codec.Encoding)), "payloads are marked encrypted")
}

// TestPlaintextSearchFindsUnencryptedPayloads is the control for the tests
// below: the same search over a history recorded without the codec finds
// its subject and body.
func TestPlaintextSearchFindsUnencryptedPayloads(t *testing.T) {
	f, err := os.Open("../workflows/testdata/retried_after_500.json")
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	require.NoError(t, err)
	b, err := proto.Marshal(h)
	require.NoError(t, err)
	assert.True(t, bytes.Contains(b, []byte("Your order is on its way.")))
	assert.True(t, bytes.Contains(b, []byte("Order shipped")))
}

// TestEncryptedNotificationKeepsPlaintextOutOfTemporal sends, with the
// codec, a notification whose recipients, subject and body are distinctive,
// one delivery delivered and one rejected (a failure message): everything
// works as without the codec, and none of those strings is anywhere in what
// Temporal stores.
func TestEncryptedNotificationKeepsPlaintextOutOfTemporal(t *testing.T) {
	s := codecStack(t, servers.WorkerConfig())
	ok := testenv.NewReceiver(t)
	refuses := testenv.NewReceiver(t, testenv.Statuses(400))
	n := onceflow.Notification{
		Key:     "codec-plain-1",
		Subject: "Parcel for Mrs Quimby",
		Body:    "Left with the neighbour at 12 Acacia Avenue",
		Deliveries: []onceflow.Delivery{
			{Channel: onceflow.Webhook, To: ok.URL + "/inbox/quimby-7781"},
			{Channel: onceflow.Webhook, To: refuses.URL + "/inbox/quimby-rejects-7782"},
		},
	}
	ctx := ctxFor(t)
	started, err := s.Client.Send(ctx, n)
	require.NoError(t, err)
	res, err := s.Client.Wait(ctx, n.Key)
	require.NoError(t, err)
	require.Len(t, res.Deliveries, 2)
	assert.Equal(t, onceflow.Delivered, res.Deliveries[0].Status)
	assert.Equal(t, onceflow.Failed, res.Deliveries[1].Status)
	assert.Equal(t, n.Deliveries[0].To, res.Deliveries[0].To, "the client decrypts the result")
	assert.Len(t, ok.Headers(), 1)

	// The fingerprint memo is encrypted too; the client still reads it to
	// join a repeat and refuse a conflict.
	again, err := s.Client.Send(ctx, n)
	require.NoError(t, err)
	assert.Equal(t, started, again)
	changed := n
	changed.Body = "something else"
	_, err = s.Client.Send(ctx, changed)
	var conflict *onceflow.ConflictError
	require.ErrorAs(t, err, &conflict)

	assertNoPlaintext(t, stored(t, started.WorkflowID, started.RunID),
		"Quimby", "Acacia", "neighbour", "inbox/quimby", n.Deliveries[0].To, "something else")
	testenv.RecordHistory(t, servers.Temporal.GetDefaultClient(), started.WorkflowID, started.RunID, "codec_delivered_and_rejected")
}

// TestEncryptedTemplateDataStaysOutOfTemporal: a template's data, and the
// text rendered from it, are encrypted like a body.
func TestEncryptedTemplateDataStaysOutOfTemporal(t *testing.T) {
	cfg := servers.WorkerConfig()
	cfg.TemplatesDir = teststack.TemplatesDir(t)
	s := codecStack(t, cfg)
	hook := testenv.NewReceiver(t)
	n := onceflow.Notification{
		Key: "codec-template-1", Template: "order-shipped",
		Data:       map[string]any{"name": "Zebedee Farthingale", "order": 77341},
		Deliveries: []onceflow.Delivery{{Channel: onceflow.Webhook, To: hook.URL + "/inbox/farthingale"}},
	}
	ctx := ctxFor(t)
	started, err := s.Client.Send(ctx, n)
	require.NoError(t, err)
	res, err := s.Client.Wait(ctx, n.Key)
	require.NoError(t, err)
	assert.Equal(t, onceflow.Delivered, res.Deliveries[0].Status)
	require.Len(t, hook.Headers(), 1)

	assertNoPlaintext(t, stored(t, started.WorkflowID, started.RunID), "Zebedee", "Farthingale", "77341")
	assert.Equal(t, workflows.ID(n.Key), started.WorkflowID, "the key, which carries no personal data, stays the workflow ID")
	testenv.RecordHistory(t, servers.Temporal.GetDefaultClient(), started.WorkflowID, started.RunID, "codec_template")
}
