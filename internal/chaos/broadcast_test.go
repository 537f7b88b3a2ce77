//go:build linux

package chaos

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/broadcast"
	"github.com/onceflow/onceflow/broadcast/recipients"
	"github.com/onceflow/onceflow/providers/webhook"
)

// postWebhook posts a signed webhook for key with delivery ID id, as a
// worker does, and returns the answer's status.
func postWebhook(t *testing.T, url string, signing []byte, key, id string) int {
	body, err := json.Marshal(webhook.Payload{Type: "notification", Timestamp: time.Now(), Data: webhook.Data{Key: key, Body: "b"}})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	now := time.Now()
	req.Header.Set("Idempotency-Key", id)
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", webhook.Sign(signing, id, now, body))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// The broadcast checker holds each recipient to "taken once, or named
// ambiguous": a second copy at the receiver that never deduplicates is a
// silent duplicate unless the status names the recipient ambiguous; a
// recipient the status counts settled and the receiver never took is
// lost; a status whose counts differ from the recipients it names is
// inconsistent; a webhook that carries another broadcast's delivery ID is
// invalid.
func TestBroadcastCheckerFindsWhatIsWrong(t *testing.T) {
	signing, err := webhook.ParseSecret(secret)
	require.NoError(t, err)
	run := newBroadcastRun(Config{}, signing, plan{seed: 1})
	mux := http.NewServeMux()
	run.mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	const key = "chaos-broadcast-000"
	// Recipients: 0 taken once; 1 taken twice by the raw receiver and not
	// named; 2 never taken; 3 taken twice by the raw receiver and named
	// ambiguous; 4 sent twice to the deduplicating receiver, which
	// answered the repeat as one.
	raw := []bool{false, true, true, true, false}
	target := bcastTarget{b: onceflow.Broadcast{Key: key, Channel: onceflow.Webhook}, raw: raw}
	for i := range raw {
		id := "member-" + strconv.Itoa(i)
		target.b.Recipients = append(target.b.Recipients, onceflow.Recipient{ID: id})
		did := onceflow.RecipientDeliveryID(key, id)
		target.ids = append(target.ids, did)
		run.byID[did] = key
	}
	run.casts = []bcastTarget{target}
	post := func(i int) {
		path := "/bcast/hooks"
		if raw[i] {
			path = "/bcast/raw"
		}
		assert.Equal(t, http.StatusOK, postWebhook(t, srv.URL+path, signing, key, target.ids[i]))
	}
	for _, i := range []int{0, 1, 1, 3, 3, 4, 4} {
		post(i)
	}
	// A webhook of a broadcast the harness never sent.
	postWebhook(t, srv.URL+"/bcast/hooks", signing, "chaos-broadcast-001", onceflow.RecipientDeliveryID("chaos-broadcast-001", "member-0"))

	named := map[string]recipients.Problem{"member-3": {Index: 3, ID: "member-3", Status: onceflow.Ambiguous, Reason: "may have sent"}}
	status := broadcast.Status{Execution: "completed", BroadcastResult: onceflow.BroadcastResult{Key: key, Total: 5, Delivered: 4, Ambiguous: 1}}
	run.outcomes = []bcastOutcome{{accepted: true, closed: true, status: status, problems: named}}

	var rep Report
	run.check(&rep, map[string]bool{})
	b := rep.Broadcasts
	assert.False(t, b.ok())
	assert.False(t, rep.OK(), "the broadcasts' findings fail the run")
	require.Len(t, b.SilentDuplicates, 1)
	assert.Contains(t, b.SilentDuplicates[0], key+"/member-1 (broadcast-raw): took effect 2 times")
	require.Len(t, b.Lost, 1)
	assert.Contains(t, b.Lost[0], key+"/member-2")
	assert.Equal(t, 2, b.DuplicateEffects)
	assert.Equal(t, 1, b.Receivers[bcastRaw].ReportedDuplicates)
	assert.Equal(t, 1, b.Justified[evidenceRepeat])
	assert.Equal(t, 1, b.Confirmed, "member-4's repeat was answered as one")
	assert.Empty(t, b.Unaccounted)
	assert.Empty(t, b.Inconsistent)
	require.Len(t, b.Invalid, 1)
	assert.Contains(t, b.Invalid[0], `key "chaos-broadcast-001"`)

	// Counts that differ from the recipients named.
	status.Ambiguous, status.Delivered = 2, 3
	run.outcomes = []bcastOutcome{{accepted: true, closed: true, status: status, problems: named}}
	rep = Report{}
	run.check(&rep, map[string]bool{})
	require.Len(t, rep.Broadcasts.Inconsistent, 1)
	assert.Contains(t, rep.Broadcasts.Inconsistent[0], "counts 2 ambiguous and 0 failed but names 1 and 0")

	// The report says all this apart from the notifications.
	var out strings.Builder
	rep.Write(&out)
	assert.Contains(t, out.String(), "broadcasts           1 of 5 recipients each, 5 recipients (accepted 1 broadcasts)")
	assert.Contains(t, out.String(), "broadcast silent duplicate: "+key+"/member-1")
	assert.Contains(t, out.String(), "invariants           FAILED")

	// A broadcast that never closed loses all its recipients.
	run.outcomes = []bcastOutcome{{accepted: true}}
	rep = Report{}
	run.check(&rep, map[string]bool{})
	assert.Equal(t, []string{key + ": never reached a final state (5 recipients)"}, rep.Broadcasts.Lost)
}
