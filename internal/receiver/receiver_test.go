package receiver_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/internal/receiver"
	"github.com/onceflow/onceflow/providers/webhook"
)

func post(t *testing.T, url string, key []byte, id string, body []byte, tamper bool) *http.Response {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	now := time.Now()
	req.Header.Set("Idempotency-Key", id)
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	sig := webhook.Sign(key, id, now, body)
	if tamper {
		sig = webhook.Sign(key, id, now, append(body, ' '))
	}
	req.Header.Set("webhook-signature", sig)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp
}

// A receiver given the signing key acts only on requests whose signature
// and body check out, and logs what it answered, replays included.
func TestReceiverVerifiesAndLogs(t *testing.T) {
	key, err := webhook.ParseSecret("whsec_" + "dGVzdC1zaWduaW5nLWtleS0xNmI=")
	require.NoError(t, err)
	r := &receiver.Receiver{Dedup: true, Key: key}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	body, err := json.Marshal(webhook.Payload{Type: "notification", Timestamp: time.Now(), Data: webhook.Data{Key: "k1", Body: "hi"}})
	require.NoError(t, err)

	assert.Equal(t, http.StatusBadRequest, post(t, srv.URL, key, "dlv_1", body, true).StatusCode)
	assert.Equal(t, http.StatusOK, post(t, srv.URL, key, "dlv_1", body, false).StatusCode)
	replay := post(t, srv.URL, key, "dlv_1", body, false)
	assert.Equal(t, "true", replay.Header.Get("Idempotent-Replayed"))
	assert.Equal(t, http.StatusBadRequest, post(t, srv.URL, key, "dlv_2", []byte(`{"type":"other"}`), false).StatusCode)

	assert.Len(t, r.Invalid(), 2)
	assert.Equal(t, 1, r.Applied("dlv_1"))
	log := r.Log()
	require.Len(t, log, 2)
	assert.True(t, log[0].Applied && log[0].Answered && !log[0].Replayed)
	assert.True(t, log[1].Replayed && log[1].Answered && !log[1].Applied)
	assert.Equal(t, "k1", log[1].Key)
}
