package httpapi_test

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/testenv"
)

// POST /v1/recover re-sends a tenant's failed deliveries once, and only
// the tenant's: another token's call neither re-sends nor lists them.
func TestRecoverIsScopedToTheTokensTenant(t *testing.T) {
	_, srv := newTenantAPI(t)
	var fixed atomic.Bool
	rcv := testenv.NewReceiver(t, testenv.Dedup(), testenv.RefuseUntil(&fixed, http.StatusBadRequest))
	since := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	a := call(t, "POST", srv.URL+"/v1/notifications", bearer(acmeToken, map[string]string{"Idempotency-Key": `"acme-invoice-1"`}),
		`{"body":"Invoice 1","deliveries":[{"channel":"webhook","to":"`+rcv.URL+`/hook"}]}`)
	require.Equal(t, http.StatusAccepted, a.code, a.body)
	require.Eventually(t, func() bool {
		st := call(t, "GET", srv.URL+"/v1/notifications/acme-invoice-1", bearer(acmeToken, nil), "")
		res, _ := st.body["result"].(map[string]any)
		ds, _ := res["deliveries"].([]any)
		return len(ds) == 1 && ds[0].(map[string]any)["status"] == string(onceflow.Failed)
	}, time.Minute, 100*time.Millisecond)
	fixed.Store(true)

	// Globex sees none of acme's.
	g := call(t, "POST", srv.URL+"/v1/recover", bearer(globexToken, nil), `{"since":"`+since+`"}`)
	require.Equal(t, http.StatusOK, g.code, g.body)
	assert.Empty(t, g.body["resent"])
	assert.Empty(t, g.body["skipped"])

	var r answer
	require.Eventually(t, func() bool {
		r = call(t, "POST", srv.URL+"/v1/recover", bearer(acmeToken, map[string]string{"Content-Type": "application/json"}), `{"since":"`+since+`","channel":"webhook"}`)
		require.Equal(t, http.StatusOK, r.code, r.body)
		resent, _ := r.body["resent"].([]any)
		return len(resent) == 1
	}, time.Minute, 200*time.Millisecond)
	resent := r.body["resent"].([]any)[0].(map[string]any)
	assert.Equal(t, "acme-invoice-1.recover", resent["new_key"])
	newID := resent["new_delivery_id"].(string)
	require.Eventually(t, func() bool { return rcv.Applied(newID) == 1 }, time.Minute, 100*time.Millisecond)

	again := call(t, "POST", srv.URL+"/v1/recover", bearer(acmeToken, nil), `{"since":"`+since+`"}`)
	require.Equal(t, http.StatusOK, again.code, again.body)
	assert.Empty(t, again.body["resent"], "nothing is sent twice")
	assert.Equal(t, 1, rcv.Applied(newID))
}

func TestRecoverRefusesBadRequests(t *testing.T) {
	_, srv := newTenantAPI(t)
	assert.Equal(t, http.StatusUnauthorized, call(t, "POST", srv.URL+"/v1/recover", nil, `{"since":"2026-11-26T09:00:00Z"}`).code)
	for body, field := range map[string]string{
		`{"since":"yesterday"}`: "since",
		`{}`:                    "since",
		`{"since":"2026-11-26T09:00:00Z","status":"ambiguous"}`: "status",
		`{"since":"2026-11-26T09:00:00Z","channel":"pigeon"}`:   "channel",
	} {
		a := call(t, "POST", srv.URL+"/v1/recover", bearer(acmeToken, nil), body)
		assert.Equal(t, http.StatusBadRequest, a.code, body)
		assert.Equal(t, field, a.body["field"], body)
	}
}
