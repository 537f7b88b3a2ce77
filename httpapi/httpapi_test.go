package httpapi_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/httpapi"
	"github.com/onceflow/onceflow/internal/openapitest"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/internal/teststack"
	"github.com/onceflow/onceflow/providers/webhook"
	"github.com/onceflow/onceflow/starter"
)

var servers teststack.Servers

// TestMain checks every exchange the tests make through
// http.DefaultClient against the OpenAPI document (openapitest.Transport):
// an undeclared status, a missing required field or a wrong type fails
// the request that produced it.
func TestMain(m *testing.M) {
	openapitest.CheckDefaultClient(httpapi.OpenAPI)
	teststack.Main(m, &servers)
}

// TestOpenAPIDocumentIsValid loads the served document with kin-openapi's
// loader and validates it (OpenAPI 3.1, JSON Schema 2020-12).
func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc, err := openapitest.Load(httpapi.OpenAPI)
	require.NoError(t, err)
	assert.NotEmpty(t, doc.Servers, "servers")
	// What a generated client needs: an example of every request body
	// (the validator checks each against its schema) and a named schema for
	// every JSON answer, so that generated types have names.
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.RequestBody != nil {
				for mediaType, c := range op.RequestBody.Value.Content {
					assert.True(t, c.Example != nil || len(c.Examples) > 0, "%s %s: %s request body has no example", method, path, mediaType)
				}
			}
			for status, r := range op.Responses.Map() {
				for mediaType, c := range r.Value.Content {
					if c.Schema != nil && strings.HasSuffix(mediaType, "json") {
						assert.NotEmpty(t, c.Schema.Ref, "%s %s: %s %s answer has no named schema", method, path, status, mediaType)
					}
				}
			}
		}
	}
}

func newAPI(t *testing.T) (*teststack.Stack, *httptest.Server) {
	s := servers.New(t, servers.WorkerConfig(), nil)
	srv := httptest.NewServer(httpapi.Handler(s.Client, slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(srv.Close)
	return s, srv
}

// TestWebhookBodyIsTheDocumentedOne checks what a webhook delivery posts
// against the document's WebhookPayload, the schema receivers generate
// types from.
func TestWebhookBodyIsTheDocumentedOne(t *testing.T) {
	doc, err := openapitest.Load(httpapi.OpenAPI)
	require.NoError(t, err)
	schema := doc.Components.Schemas["WebhookPayload"]
	require.NotNil(t, schema, "components.schemas.WebhookPayload")
	for _, p := range []webhook.Payload{
		{Type: "notification", Timestamp: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), Data: webhook.Data{Key: "k", Subject: "s", Body: "b"}},
		{Type: "notification", Timestamp: time.Now(), Data: webhook.Data{Key: "k"}},
	} {
		b, err := json.Marshal(p)
		require.NoError(t, err)
		var v any
		require.NoError(t, json.Unmarshal(b, &v))
		assert.NoError(t, schema.Value.VisitJSON(v), "%s", b)
	}
}

type answer struct {
	code   int
	header http.Header
	body   map[string]any
}

func call(t *testing.T, method, url string, header map[string]string, body string) answer {
	t.Helper()
	return callWith(t, http.DefaultClient, method, url, header, body)
}

// callWith is call through the client c.
func callWith(t *testing.T, c *http.Client, method, url string, header map[string]string, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	a := answer{code: resp.StatusCode, header: resp.Header}
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" || mt == httpapi.ProblemType {
		require.NoError(t, json.Unmarshal(raw, &a.body), string(raw))
	}
	return a
}

func notificationJSON(to string) string {
	return `{"subject":"Shipped","body":"On its way","deliveries":[{"channel":"webhook","to":"` + to + `"}]}`
}

func TestPostStartsOnceAndRepeatsTheAnswer(t *testing.T) {
	s, srv := newAPI(t)
	rcv := testenv.NewReceiver(t)
	hdr := map[string]string{"Idempotency-Key": `"api-order-1"`, "Content-Type": "application/json"}

	first := call(t, "POST", srv.URL+"/v1/notifications", hdr, notificationJSON(rcv.URL))
	require.Equal(t, http.StatusAccepted, first.code, first.body)
	assert.Equal(t, "notification/api-order-1", first.body["workflow_id"])
	assert.Equal(t, "/v1/notifications/api-order-1", first.header.Get("Location"))

	repeat := call(t, "POST", srv.URL+"/v1/notifications", hdr, notificationJSON(rcv.URL))
	assert.Equal(t, http.StatusAccepted, repeat.code)
	assert.Equal(t, first.body, repeat.body, "the same answer on a repeat")

	_, err := s.Client.Wait(teststack.Context(t), "api-order-1")
	require.NoError(t, err)
	id := onceflow.Delivery{Channel: onceflow.Webhook, To: rcv.URL}.ID("api-order-1")
	assert.Equal(t, 1, rcv.Raw(id))

	status := call(t, "GET", srv.URL+"/v1/notifications/api-order-1", nil, "")
	require.Equal(t, http.StatusOK, status.code)
	assert.Equal(t, "completed", status.body["execution"])
	deliveries := status.body["result"].(map[string]any)["deliveries"].([]any)
	assert.Equal(t, "delivered", deliveries[0].(map[string]any)["status"])

	// The same key with another payload, even after completion.
	other := call(t, "POST", srv.URL+"/v1/notifications", hdr, `{"body":"changed","deliveries":[{"channel":"webhook","to":"`+rcv.URL+`"}]}`)
	assert.Equal(t, http.StatusUnprocessableEntity, other.code)
	assert.Equal(t, "Idempotency-Key", other.body["field"])
	assert.Equal(t, 1, rcv.Raw(id))
}

func TestKeyReusedAfterItsWorkflowWasDeletedIs422(t *testing.T) {
	s := servers.New(t, servers.WorkerConfig(), nil)
	// As `onceflow api` runs with REDIS_URL set.
	c := starter.New(s.TC, s.Queue, starter.WithLedger(dedup.New(servers.Redis.Client(t), time.Hour)))
	srv := httptest.NewServer(httpapi.Handler(c, slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(srv.Close)
	rcv := testenv.NewReceiver(t)
	hdr := map[string]string{"Idempotency-Key": `"api-deleted-1"`, "Content-Type": "application/json"}

	first := call(t, "POST", srv.URL+"/v1/notifications", hdr, notificationJSON(rcv.URL))
	require.Equal(t, http.StatusAccepted, first.code, first.body)
	_, err := c.Wait(teststack.Context(t), "api-deleted-1")
	require.NoError(t, err)
	// Temporal's retention passes; the dedup records live on.
	teststack.DeleteWorkflow(t, s.TC, servers.Temporal.GetDefaultNamespace(), "notification/api-deleted-1")

	other := call(t, "POST", srv.URL+"/v1/notifications", hdr, `{"body":"changed","deliveries":[{"channel":"webhook","to":"`+rcv.URL+`"}]}`)
	assert.Equal(t, http.StatusUnprocessableEntity, other.code, other.body)
	assert.Equal(t, "Idempotency-Key", other.body["field"])
	assert.Contains(t, other.body["error"], "different payload")
	assert.Equal(t, http.StatusNotFound, call(t, "GET", srv.URL+"/v1/notifications/api-deleted-1", nil, "").code, "nothing was started")
	assert.Len(t, rcv.Headers(), 1, "only the first notification was sent")
}

func TestBadRequestsNameTheProblemAndStartNothing(t *testing.T) {
	s, srv := newAPI(t)
	good := notificationJSON("https://partner.example/hooks")
	cases := []struct {
		name   string
		header map[string]string
		body   string
		code   int
		field  string
	}{
		{"no key", nil, good, 400, "Idempotency-Key"},
		{"key with a space", map[string]string{"Idempotency-Key": "bad key"}, good, 400, "Idempotency-Key"},
		{"broken quoting", map[string]string{"Idempotency-Key": `"bad\`}, good, 400, "Idempotency-Key"},
		{"bare key", map[string]string{"Idempotency-Key": "api-bare-1"}, good, 400, "Idempotency-Key"},
		{"body key differs", map[string]string{"Idempotency-Key": `"api-bad-1"`}, `{"key":"other","body":"b","deliveries":[{"channel":"webhook","to":"https://x.example"}]}`, 400, "key"},
		{"not JSON", map[string]string{"Idempotency-Key": `"api-bad-2"`}, `{"body":`, 400, "notification"},
		{"unknown field", map[string]string{"Idempotency-Key": `"api-bad-3"`}, `{"body":"b","urgent":true}`, 400, "urgent"},
		{"wrong type", map[string]string{"Idempotency-Key": `"api-bad-4"`}, `{"body":5}`, 400, "body"},
		{"bad channel", map[string]string{"Idempotency-Key": `"api-bad-5"`}, `{"body":"b","deliveries":[{"channel":"fax","to":"1"}]}`, 400, "deliveries[0].channel"},
		{"no deliveries", map[string]string{"Idempotency-Key": `"api-bad-6"`}, `{"body":"b"}`, 400, "deliveries"},
		{"bad send_at", map[string]string{"Idempotency-Key": `"api-bad-7"`}, `{"body":"b","send_at":"soon"}`, 400, "send_at"},
		{"not JSON content", map[string]string{"Idempotency-Key": `"api-bad-8"`, "Content-Type": "text/plain"}, good, 415, "Content-Type"},
		{"too large", map[string]string{"Idempotency-Key": `"api-bad-9"`}, `{"body":"` + strings.Repeat("x", 2<<20) + `"}`, 413, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := call(t, "POST", srv.URL+"/v1/notifications", c.header, c.body)
			assert.Equal(t, c.code, a.code, a.body)
			if c.field != "" {
				assert.Equal(t, c.field, a.body["field"], a.body)
			}
			assert.NotEmpty(t, a.body["error"])
		})
	}
	for _, key := range []string{"api-bare-1", "api-bad-1", "other", "api-bad-2", "api-bad-5", "api-bad-9"} {
		_, err := s.Client.Status(teststack.Context(t), key)
		var nf *onceflow.NotFoundError
		assert.ErrorAs(t, err, &nf, "nothing started for %s", key)
	}
	assert.Equal(t, http.StatusNotFound, call(t, "GET", srv.URL+"/v1/notifications/never-sent", nil, "").code)
	assert.Equal(t, http.StatusBadRequest, call(t, "GET", srv.URL+"/v1/notifications/has%20space", nil, "").code)
}

func TestDeleteCancelsOnlyWhatIsNotDone(t *testing.T) {
	_, srv := newAPI(t)
	rcv := testenv.NewReceiver(t)
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	body := `{"body":"Reminder","send_at":"` + later + `","deliveries":[{"channel":"webhook","to":"` + rcv.URL + `"}]}`
	a := call(t, "POST", srv.URL+"/v1/notifications", map[string]string{"Idempotency-Key": `"api-reminder"`}, body)
	require.Equal(t, http.StatusAccepted, a.code, a.body)

	a = call(t, "DELETE", srv.URL+"/v1/notifications/api-reminder", nil, "")
	require.Equal(t, http.StatusAccepted, a.code, a.body)
	require.Eventually(t, func() bool {
		return call(t, "GET", srv.URL+"/v1/notifications/api-reminder", nil, "").body["execution"] == "cancelled"
	}, 20*time.Second, 100*time.Millisecond)
	a = call(t, "DELETE", srv.URL+"/v1/notifications/api-reminder", nil, "")
	assert.Equal(t, http.StatusConflict, a.code, "finished: nothing to cancel")
	assert.Empty(t, rcv.Headers())
	assert.Equal(t, http.StatusNotFound, call(t, "DELETE", srv.URL+"/v1/notifications/never-sent", nil, "").code)
}

func TestOpenAPIDocumentIsServedAndCoversTheRoutes(t *testing.T) {
	_, srv := newAPI(t)
	assert.Equal(t, http.StatusOK, call(t, "GET", srv.URL+"/healthz", nil, "").code)
	resp, err := http.Get(srv.URL + "/v1/openapi.yaml")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var doc struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	require.NoError(t, yaml.NewDecoder(resp.Body).Decode(&doc))
	assert.Equal(t, "3.1.0", doc.OpenAPI)
	for path, methods := range map[string][]string{
		"/v1/notifications":       {"post"},
		"/v1/notifications/{key}": {"get", "delete"},
		"/v1/broadcasts":          {"post"},
		"/v1/broadcasts/{key}":    {"get", "delete"},
		"/v1/recover":             {"post"},
		"/v1/openapi.yaml":        {"get"},
		"/healthz":                {"get"},
	} {
		for _, m := range methods {
			assert.Contains(t, doc.Paths[path], m, "%s %s", m, path)
		}
	}
}

// TestErrorAnswersAreProblemDetails: a refused request is answered with an
// RFC 9457 problem (application/problem+json) that names the field, and
// keeps the error member older clients read.
func TestErrorAnswersAreProblemDetails(t *testing.T) {
	_, srv := newAPI(t)
	for _, tc := range []struct {
		name, method, path string
		header             map[string]string
		body               string
		status             int
		field              string
	}{
		{"no Idempotency-Key", "POST", "/v1/notifications", nil, notificationJSON("https://partner.example"), http.StatusBadRequest, "Idempotency-Key"},
		{"a bad channel", "POST", "/v1/notifications", map[string]string{"Idempotency-Key": `"problem-1"`}, `{"body":"x","deliveries":[{"channel":"pigeon","to":"x"}]}`, http.StatusBadRequest, "deliveries[0].channel"},
		{"an unknown key", "GET", "/v1/notifications/never-sent-problem", nil, "", http.StatusNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := call(t, tc.method, srv.URL+tc.path, tc.header, tc.body)
			require.Equal(t, tc.status, a.code, a.body)
			assert.Equal(t, "application/problem+json", a.header.Get("Content-Type"))
			assert.Equal(t, "about:blank", a.body["type"])
			assert.Equal(t, http.StatusText(tc.status), a.body["title"])
			assert.Equal(t, float64(tc.status), a.body["status"])
			assert.NotEmpty(t, a.body["detail"])
			assert.Equal(t, a.body["detail"], a.body["error"], "error repeats detail for older clients")
			if tc.field != "" {
				assert.Equal(t, tc.field, a.body["field"])
			} else {
				assert.NotContains(t, a.body, "field")
			}
		})
	}
}
