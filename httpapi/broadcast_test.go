package httpapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/broadcast"
	"github.com/onceflow/onceflow/broadcast/recipients"
	"github.com/onceflow/onceflow/httpapi"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/starter"
)

// newBroadcastAPI is the API on a worker of its own, whose client keeps
// recipient lists in the test Redis, in chunks of 50.
func newBroadcastAPI(t *testing.T) *httptest.Server {
	s := servers.New(t, servers.WorkerConfig(), nil)
	c := starter.New(s.TC, s.Queue)
	bc := broadcast.NewClient(c, recipients.New(servers.Redis.Client(t)), time.Hour).WithChunks(50, 2)
	srv := httptest.NewServer(httpapi.Handler(c, slog.New(slog.NewTextHandler(io.Discard, nil)), httpapi.WithBroadcasts(bc)))
	t.Cleanup(srv.Close)
	return srv
}

func broadcastJSON(url string, n int, extra string) string {
	rs := make([]string, n)
	for i := range rs {
		rs[i] = fmt.Sprintf(`{"id":"user-%d","to":"%s/hooks/%d"}`, i, url, i)
	}
	return `{"channel":"webhook","subject":"Sale","body":"Everything must go",` + extra + `"recipients":[` + strings.Join(rs, ",") + `]}`
}

// settled polls GET until the broadcast's workflow has closed.
func settled(t *testing.T, url string) answer {
	t.Helper()
	var a answer
	require.Eventually(t, func() bool {
		a = call(t, "GET", url, nil, "")
		return a.code == http.StatusOK && a.body["execution"] != "running"
	}, time.Minute, 100*time.Millisecond)
	return a
}

func TestBroadcastAPIStartsJoinsAndReports(t *testing.T) {
	srv := newBroadcastAPI(t)
	gone := "/hooks/7"
	rcv := testenv.NewReceiver(t)
	// One recipient's endpoint is gone for good.
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == gone {
			w.WriteHeader(http.StatusGone)
			return
		}
		rcv.ServeHTTP(w, r)
	}))
	t.Cleanup(failing.Close)
	hdr := map[string]string{"Idempotency-Key": `"api-sale-1"`, "Content-Type": "application/json"}
	body := broadcastJSON(failing.URL, 120, "")

	first := call(t, "POST", srv.URL+"/v1/broadcasts", hdr, body)
	require.Equal(t, http.StatusAccepted, first.code, first.body)
	assert.Equal(t, "broadcast/api-sale-1", first.body["workflow_id"])
	assert.Equal(t, "/v1/broadcasts/api-sale-1", first.body["status_url"])
	repeat := call(t, "POST", srv.URL+"/v1/broadcasts", hdr, body)
	assert.Equal(t, http.StatusAccepted, repeat.code)
	assert.Equal(t, first.body, repeat.body, "the same key and payload joins")
	changed := call(t, "POST", srv.URL+"/v1/broadcasts", hdr, broadcastJSON(failing.URL, 121, ""))
	assert.Equal(t, http.StatusUnprocessableEntity, changed.code, changed.body)
	assert.Equal(t, "Idempotency-Key", changed.body["field"])

	st := settled(t, srv.URL+"/v1/broadcasts/api-sale-1")
	assert.Equal(t, "completed", st.body["execution"])
	assert.Equal(t, "failed", st.body["status"])
	for field, want := range map[string]float64{"total": 120, "delivered": 119, "failed": 1, "suppressed": 0, "ambiguous": 0, "pending": 0} {
		assert.Equal(t, want, st.body[field], field)
	}
	problems := st.body["problems"].([]any)
	require.Len(t, problems, 1)
	p := problems[0].(map[string]any)
	assert.Equal(t, "user-7", p["id"])
	assert.Equal(t, "failed", p["status"])
	assert.Contains(t, p["reason"], "410")
	for i := range 120 {
		if i != 7 {
			require.Equal(t, 1, rcv.Raw(onceflow.RecipientDeliveryID("api-sale-1", fmt.Sprintf("user-%d", i))))
		}
	}

	// Past the one problem, the page is empty; a bad limit names itself.
	// The last page's next_cursor is null, as every list's is.
	assert.Contains(t, st.body, "next_cursor")
	assert.Nil(t, st.body["next_cursor"], "one problem: one page")
	next := call(t, "GET", srv.URL+"/v1/broadcasts/api-sale-1?cursor=8&limit=10", nil, "")
	assert.Equal(t, []any{}, next.body["problems"])
	for _, query := range []string{"limit=many", "limit=0", "limit=101"} {
		bad := call(t, "GET", srv.URL+"/v1/broadcasts/api-sale-1?"+query, nil, "")
		assert.Equal(t, http.StatusBadRequest, bad.code, query)
		assert.Equal(t, "limit", bad.body["field"], query)
	}
	badCursor := call(t, "GET", srv.URL+"/v1/broadcasts/api-sale-1?cursor=x1", nil, "")
	assert.Equal(t, http.StatusBadRequest, badCursor.code)
	assert.Equal(t, "cursor", badCursor.body["field"])

	done := call(t, "DELETE", srv.URL+"/v1/broadcasts/api-sale-1", nil, "")
	assert.Equal(t, http.StatusConflict, done.code, "a finished broadcast cannot be cancelled")
	assert.Equal(t, http.StatusNotFound, call(t, "GET", srv.URL+"/v1/broadcasts/no-such-sale", nil, "").code)
}

func TestBroadcastAPIRefusesBadInput(t *testing.T) {
	srv := newBroadcastAPI(t)
	hdr := map[string]string{"Idempotency-Key": `"api-bad-sale"`, "Content-Type": "application/json"}
	body := strings.Replace(broadcastJSON("https://partner.example", 3, ""), `"to":"https://partner.example/hooks/1"`, `"to":"partner.example"`, 1)
	a := call(t, "POST", srv.URL+"/v1/broadcasts", hdr, body)
	assert.Equal(t, http.StatusBadRequest, a.code)
	assert.Equal(t, "recipients[1].to", a.body["field"])

	a = call(t, "POST", srv.URL+"/v1/broadcasts", hdr, broadcastJSON("https://partner.example", 2, `"colour":"red",`))
	assert.Equal(t, http.StatusBadRequest, a.code)
	assert.Equal(t, "colour", a.body["field"])

	a = call(t, "POST", srv.URL+"/v1/broadcasts", nil, broadcastJSON("https://partner.example", 2, ""))
	assert.Equal(t, "Idempotency-Key", a.body["field"])

	// 100,000 recipients fit in 64 MiB; a body past it is refused as such.
	a = call(t, "POST", srv.URL+"/v1/broadcasts", hdr, `{"body":"`+strings.Repeat("a", 64<<20)+`"}`)
	assert.Equal(t, http.StatusRequestEntityTooLarge, a.code, a.body)
	assert.Equal(t, http.StatusNotFound, call(t, "GET", srv.URL+"/v1/broadcasts/api-bad-sale", nil, "").code, "nothing was started")
}

func TestBroadcastAPICancelsBeforeSendAt(t *testing.T) {
	srv := newBroadcastAPI(t)
	rcv := testenv.NewReceiver(t)
	later, _ := json.Marshal(time.Now().Add(time.Hour).UTC())
	hdr := map[string]string{"Idempotency-Key": `"api-later-sale"`}
	a := call(t, "POST", srv.URL+"/v1/broadcasts", hdr, broadcastJSON(rcv.URL, 80, `"send_at":`+string(later)+`,`))
	require.Equal(t, http.StatusAccepted, a.code, a.body)

	del := call(t, "DELETE", srv.URL+"/v1/broadcasts/api-later-sale", nil, "")
	assert.Equal(t, http.StatusAccepted, del.code, del.body)
	st := settled(t, srv.URL+"/v1/broadcasts/api-later-sale")
	assert.Equal(t, "cancelled", st.body["execution"])
	assert.Equal(t, float64(80), st.body["cancelled"])
	assert.Empty(t, rcv.Log(), "nothing was sent")
}

func TestBroadcastAPIWithoutRedisSaysSo(t *testing.T) {
	s := servers.New(t, servers.WorkerConfig(), nil)
	srv := httptest.NewServer(httpapi.Handler(s.Client, slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(srv.Close)
	a := call(t, "POST", srv.URL+"/v1/broadcasts", map[string]string{"Idempotency-Key": `"api-no-redis"`}, broadcastJSON("https://partner.example", 2, ""))
	assert.Equal(t, http.StatusServiceUnavailable, a.code)
	assert.Contains(t, a.body["error"], "REDIS_URL")
}

// A broadcast is its tenant's as a notification is: another tenant can
// neither read, cancel nor join it, and its key is free in every other
// tenant.
func TestBroadcastsAreIsolatedByTenant(t *testing.T) {
	s := servers.New(t, servers.WorkerConfig(), nil)
	path := filepath.Join(t.TempDir(), "tokens")
	writeTokens(t, path, httpapi.HashLine("acme", acmeToken), httpapi.HashLine("globex", globexToken))
	tokens, err := httpapi.LoadTokens(path)
	require.NoError(t, err)
	c := starter.New(s.TC, s.Queue)
	bc := broadcast.NewClient(c, recipients.New(servers.Redis.Client(t)), time.Hour).WithChunks(50, 2)
	srv := httptest.NewServer(httpapi.Handler(c, slog.New(slog.NewTextHandler(io.Discard, nil)), httpapi.WithTokens(tokens), httpapi.WithBroadcasts(bc)))
	t.Cleanup(srv.Close)
	rcv := testenv.NewReceiver(t)
	later, _ := json.Marshal(time.Now().Add(time.Hour).UTC())
	body := broadcastJSON(rcv.URL, 3, `"send_at":`+string(later)+`,`)
	post := func(token, body string) answer {
		return call(t, "POST", srv.URL+"/v1/broadcasts", bearer(token, map[string]string{"Idempotency-Key": `"bc-tenant"`}), body)
	}

	assert.Equal(t, http.StatusUnauthorized, call(t, "POST", srv.URL+"/v1/broadcasts", map[string]string{"Idempotency-Key": `"bc-tenant"`}, body).code)
	assert.Equal(t, http.StatusUnauthorized, call(t, "GET", srv.URL+"/v1/broadcasts/bc-tenant", nil, "").code)
	withTenant := post(acmeToken, strings.Replace(body, `{"channel"`, `{"tenant":"globex","channel"`, 1))
	assert.Equal(t, http.StatusBadRequest, withTenant.code, withTenant.body)
	assert.Equal(t, "tenant", withTenant.body["field"])

	a := post(acmeToken, body)
	require.Equal(t, http.StatusAccepted, a.code, a.body)
	assert.Equal(t, "broadcast/acme@bc-tenant", a.body["workflow_id"])
	assert.Equal(t, http.StatusOK, call(t, "GET", srv.URL+"/v1/broadcasts/bc-tenant", bearer(acmeToken, nil), "").code)
	assert.Equal(t, http.StatusNotFound, call(t, "GET", srv.URL+"/v1/broadcasts/bc-tenant", bearer(globexToken, nil), "").code)
	assert.Equal(t, http.StatusNotFound, call(t, "DELETE", srv.URL+"/v1/broadcasts/bc-tenant", bearer(globexToken, nil), "").code)
	g := post(globexToken, broadcastJSON(rcv.URL, 2, `"send_at":`+string(later)+`,`))
	require.Equal(t, http.StatusAccepted, g.code, "another tenant's key is no conflict: %v", g.body)
	assert.Equal(t, "broadcast/globex@bc-tenant", g.body["workflow_id"])

	st := call(t, "GET", srv.URL+"/v1/broadcasts/bc-tenant", bearer(acmeToken, nil), "")
	assert.Equal(t, float64(3), st.body["total"], "acme's broadcast is untouched")
	for _, token := range []string{acmeToken, globexToken} {
		assert.Equal(t, http.StatusAccepted, call(t, "DELETE", srv.URL+"/v1/broadcasts/bc-tenant", bearer(token, nil), "").code)
	}
	assert.Empty(t, rcv.Log(), "nothing was sent")
}
