package httpapi_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/httpapi"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/internal/teststack"
	"github.com/onceflow/onceflow/starter"
)

// The callers' tokens in these tests; the file holds only their hashes.
const (
	acmeToken   = "acme-0123456789abcdef0123456789abcdef"
	globexToken = "globex-0123456789abcdef0123456789abcdef"
)

func writeTokens(t *testing.T, path string, lines ...string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
}

// newTenantAPI serves the API with a token for tenants acme and globex, on
// a worker of its own, with the dedup ledger as `onceflow api` reads it.
func newTenantAPI(t *testing.T) (*teststack.Stack, *httptest.Server) {
	s := servers.New(t, servers.WorkerConfig(), nil)
	path := filepath.Join(t.TempDir(), "tokens")
	writeTokens(t, path, "# tenants", httpapi.HashLine("acme", acmeToken), "", httpapi.HashLine("globex", globexToken))
	tokens, err := httpapi.LoadTokens(path)
	require.NoError(t, err)
	c := starter.New(s.TC, s.Queue, starter.WithLedger(dedup.New(servers.Redis.Client(t), time.Hour)))
	srv := httptest.NewServer(httpapi.Handler(c, slog.New(slog.NewTextHandler(io.Discard, nil)), httpapi.WithTokens(tokens)))
	t.Cleanup(srv.Close)
	return s, srv
}

func bearer(token string, more map[string]string) map[string]string {
	h := map[string]string{"Authorization": "Bearer " + token}
	for k, v := range more {
		h[k] = v
	}
	return h
}

func TestRequestsWithoutAValidTokenAre401AndStartNothing(t *testing.T) {
	s, srv := newTenantAPI(t)
	rcv := testenv.NewReceiver(t)
	cases := []struct {
		name, authorization, errorCode string
	}{
		{"no token", "", ""},
		{"unknown token", "Bearer not-a-token", "invalid_token"},
		{"the hash instead of the token", "Bearer " + strings.Fields(httpapi.HashLine("acme", acmeToken))[1], "invalid_token"},
		{"another scheme", "Basic " + acmeToken, "invalid_request"},
		{"no token after Bearer", "Bearer ", "invalid_request"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := "auth-401-" + string(rune('a'+i))
			hdr := map[string]string{"Idempotency-Key": strconv.Quote(key)}
			if c.authorization != "" {
				hdr["Authorization"] = c.authorization
			}
			for _, req := range []struct{ method, path, body string }{
				{"POST", "/v1/notifications", notificationJSON(rcv.URL)},
				{"GET", "/v1/notifications/" + key, ""},
				{"DELETE", "/v1/notifications/" + key, ""},
			} {
				a := call(t, req.method, srv.URL+req.path, hdr, req.body)
				assert.Equal(t, http.StatusUnauthorized, a.code, "%s %s", req.method, req.path)
				challenge := a.header.Get("WWW-Authenticate")
				assert.True(t, strings.HasPrefix(challenge, `Bearer realm="onceflow"`), challenge)
				if c.errorCode != "" {
					assert.Contains(t, challenge, `error="`+c.errorCode+`"`)
				} else {
					assert.NotContains(t, challenge, "error=", "RFC 6750: no error code when no credentials were sent")
				}
				assert.Equal(t, "Authorization", a.body["field"])
				assert.NotEmpty(t, a.body["error"])
				assert.NotContains(t, a.body["error"], acmeToken)
			}
			for _, tenant := range []string{"", "acme", "globex"} {
				_, err := s.Client.ForTenant(tenant).Status(teststack.Context(t), key)
				var nf *onceflow.NotFoundError
				assert.ErrorAs(t, err, &nf, "nothing started for %s in tenant %q", key, tenant)
			}
		})
	}
	// Two Authorization headers are ambiguous, whatever they hold.
	req, err := http.NewRequest("GET", srv.URL+"/v1/notifications/auth-401-x", nil)
	require.NoError(t, err)
	req.Header.Add("Authorization", "Bearer "+acmeToken)
	req.Header.Add("Authorization", "Bearer "+globexToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Empty(t, rcv.Headers(), "nothing was sent")

	// What stays public, and that a valid token gets through.
	assert.Equal(t, http.StatusOK, call(t, "GET", srv.URL+"/healthz", nil, "").code)
	assert.Equal(t, http.StatusOK, call(t, "GET", srv.URL+"/v1/openapi.yaml", nil, "").code)
	assert.Equal(t, http.StatusNotFound, call(t, "GET", srv.URL+"/v1/notifications/auth-401-a", bearer(acmeToken, nil), "").code)
	assert.Equal(t, http.StatusNotFound, call(t, "GET", srv.URL+"/v1/notifications/auth-401-a", map[string]string{"Authorization": "bearer " + acmeToken}, "").code, "the scheme is case-insensitive")
}

func TestTenantsAreIsolated(t *testing.T) {
	s, srv := newTenantAPI(t)
	rcv := testenv.NewReceiver(t)
	post := func(token, key, body string) answer {
		return call(t, "POST", srv.URL+"/v1/notifications", bearer(token, map[string]string{"Idempotency-Key": strconv.Quote(key), "Content-Type": "application/json"}), body)
	}
	acme, globex := s.Client.ForTenant("acme"), s.Client.ForTenant("globex")

	// The same key in two tenants, with different payloads: two
	// notifications, both delivered, neither a conflict for the other.
	a := post(acmeToken, "tenant-shared-1", `{"body":"for acme","deliveries":[{"channel":"webhook","to":"`+rcv.URL+`"}]}`)
	require.Equal(t, http.StatusAccepted, a.code, a.body)
	assert.Equal(t, "notification/acme@tenant-shared-1", a.body["workflow_id"])
	assert.Equal(t, "tenant-shared-1", a.body["key"])
	ctx := teststack.Context(t)
	_, err := acme.Wait(ctx, "tenant-shared-1")
	require.NoError(t, err)
	b := post(globexToken, "tenant-shared-1", `{"body":"for globex","deliveries":[{"channel":"webhook","to":"`+rcv.URL+`"}]}`)
	require.Equal(t, http.StatusAccepted, b.code, "another tenant's key is no conflict: %v", b.body)
	assert.Equal(t, "notification/globex@tenant-shared-1", b.body["workflow_id"])
	res, err := globex.Wait(ctx, "tenant-shared-1")
	require.NoError(t, err)
	assert.Equal(t, "tenant-shared-1", res.Key, "the result names the caller's key")
	assert.Equal(t, onceflow.Delivered, res.Deliveries[0].Status)
	assert.Equal(t, 2, rcv.AppliedFor("tenant-shared-1"), "both delivered, each under the key its caller chose")
	d := onceflow.Delivery{Channel: onceflow.Webhook, To: rcv.URL}
	assert.Equal(t, 1, rcv.Raw(d.ID("acme@tenant-shared-1")))
	assert.Equal(t, 1, rcv.Raw(d.ID("globex@tenant-shared-1")))
	assert.Equal(t, 0, rcv.Raw(d.ID("tenant-shared-1")), "no single-tenant delivery")

	// Each reads its own; a repeat in acme is still a conflict in acme.
	got := call(t, "GET", srv.URL+"/v1/notifications/tenant-shared-1", bearer(acmeToken, nil), "")
	require.Equal(t, http.StatusOK, got.code)
	assert.Equal(t, "notification/acme@tenant-shared-1", got.body["workflow_id"])
	again := post(acmeToken, "tenant-shared-1", `{"body":"changed","deliveries":[{"channel":"webhook","to":"`+rcv.URL+`"}]}`)
	assert.Equal(t, http.StatusUnprocessableEntity, again.code, again.body)

	// Globex can neither see, cancel nor join acme's notification.
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	reminder := `{"body":"Reminder","send_at":"` + later + `","deliveries":[{"channel":"webhook","to":"` + rcv.URL + `"}]}`
	require.Equal(t, http.StatusAccepted, post(acmeToken, "tenant-acme-only", reminder).code)
	assert.Equal(t, http.StatusNotFound, call(t, "GET", srv.URL+"/v1/notifications/tenant-acme-only", bearer(globexToken, nil), "").code)
	assert.Equal(t, http.StatusNotFound, call(t, "DELETE", srv.URL+"/v1/notifications/tenant-acme-only", bearer(globexToken, nil), "").code)
	joined := post(globexToken, "tenant-acme-only", reminder)
	require.Equal(t, http.StatusAccepted, joined.code, joined.body)
	assert.Equal(t, "notification/globex@tenant-acme-only", joined.body["workflow_id"], "a new notification of its own, not acme's")
	st, err := acme.Status(ctx, "tenant-acme-only")
	require.NoError(t, err)
	assert.Equal(t, "running", st.Execution, "acme's reminder is untouched")
	_, err = s.Client.Status(ctx, "tenant-acme-only")
	var nf *onceflow.NotFoundError
	assert.ErrorAs(t, err, &nf, "the single tenant does not see it either")
	require.NoError(t, acme.Cancel(ctx, "tenant-acme-only"))
	require.NoError(t, globex.Cancel(ctx, "tenant-acme-only"))
}

// The dedup ledger and records are scoped too: a key the single tenant
// used (an installation before tokens) neither blocks nor suppresses a
// tenant's notification with that key.
func TestATenantsKeyIsNotTheSingleTenantsKey(t *testing.T) {
	s, srv := newTenantAPI(t)
	rcv := testenv.NewReceiver(t)
	ctx := teststack.Context(t)
	single := starter.New(s.TC, s.Queue, starter.WithLedger(dedup.New(servers.Redis.Client(t), time.Hour)))
	_, err := single.Send(ctx, onceflow.Notification{Key: "tenant-legacy-1", Body: "before tokens",
		Deliveries: []onceflow.Delivery{{Channel: onceflow.Webhook, To: rcv.URL}}})
	require.NoError(t, err)
	_, err = single.Wait(ctx, "tenant-legacy-1")
	require.NoError(t, err)

	a := call(t, "POST", srv.URL+"/v1/notifications", bearer(acmeToken, map[string]string{"Idempotency-Key": `"tenant-legacy-1"`}),
		`{"body":"acme's own","deliveries":[{"channel":"webhook","to":"`+rcv.URL+`"}]}`)
	require.Equal(t, http.StatusAccepted, a.code, "the single tenant's ledger entry is not acme's: %v", a.body)
	res, err := s.Client.ForTenant("acme").Wait(ctx, "tenant-legacy-1")
	require.NoError(t, err)
	assert.Equal(t, onceflow.Delivered, res.Deliveries[0].Status, res.Deliveries[0].Reason)
	assert.Equal(t, 2, rcv.AppliedFor("tenant-legacy-1"))
}

func TestTheBodyCannotChooseTheTenant(t *testing.T) {
	s, srv := newTenantAPI(t)
	for _, token := range []string{acmeToken, globexToken} {
		a := call(t, "POST", srv.URL+"/v1/notifications", bearer(token, map[string]string{"Idempotency-Key": `"tenant-forged"`}),
			`{"tenant":"acme","body":"b","deliveries":[{"channel":"webhook","to":"https://partner.example/hooks"}]}`)
		assert.Equal(t, http.StatusBadRequest, a.code, a.body)
		assert.Equal(t, "tenant", a.body["field"])
	}
	for _, tenant := range []string{"", "acme", "globex"} {
		_, err := s.Client.ForTenant(tenant).Status(teststack.Context(t), "tenant-forged")
		var nf *onceflow.NotFoundError
		assert.ErrorAs(t, err, &nf, "nothing started in tenant %q", tenant)
	}
	// Nor without tokens, where every caller is the single tenant.
	_, open := newAPI(t)
	a := call(t, "POST", open.URL+"/v1/notifications", map[string]string{"Idempotency-Key": `"tenant-forged"`},
		`{"tenant":"acme","body":"b","deliveries":[{"channel":"webhook","to":"https://partner.example/hooks"}]}`)
	assert.Equal(t, http.StatusBadRequest, a.code, a.body)
	assert.Equal(t, "tenant", a.body["field"])
}

func TestOpenAPIDeclaresTheBearerScheme(t *testing.T) {
	var doc struct {
		Security   []map[string][]string `yaml:"security"`
		Components struct {
			SecuritySchemes map[string]struct {
				Type   string `yaml:"type"`
				Scheme string `yaml:"scheme"`
			} `yaml:"securitySchemes"`
		} `yaml:"components"`
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	require.NoError(t, yaml.Unmarshal(httpapi.OpenAPI, &doc))
	type operation struct {
		Security  *[]map[string][]string `yaml:"security"`
		Responses map[string]any         `yaml:"responses"`
	}
	opOf := func(path, method string) operation {
		var op operation
		node := doc.Paths[path][method]
		require.NoError(t, node.Decode(&op), "%s %s", method, path)
		return op
	}
	assert.Equal(t, "http", doc.Components.SecuritySchemes["bearerAuth"].Type)
	assert.Equal(t, "bearer", doc.Components.SecuritySchemes["bearerAuth"].Scheme)
	assert.Equal(t, []map[string][]string{{"bearerAuth": {}}}, doc.Security)
	for _, public := range []string{"/healthz", "/v1/openapi.yaml"} {
		op := opOf(public, "get")
		require.NotNil(t, op.Security, public)
		assert.Empty(t, *op.Security, "%s is public", public)
	}
	for path, methods := range map[string][]string{"/v1/notifications": {"post"}, "/v1/notifications/{key}": {"get", "delete"}} {
		for _, m := range methods {
			op := opOf(path, m)
			assert.Nil(t, op.Security, "%s %s takes the global security", m, path)
			assert.Contains(t, op.Responses, "401", "%s %s documents 401", m, path)
		}
	}
}
