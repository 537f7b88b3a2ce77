package httpapi_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"gopkg.in/yaml.v3"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/httpapi"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/internal/teststack"
	"github.com/onceflow/onceflow/preferences"
	"github.com/onceflow/onceflow/providers/email"
	"github.com/onceflow/onceflow/starter"
	"github.com/onceflow/onceflow/workflows"
)

// mailbox is a real SMTP server on loopback that keeps every message.
type mailbox struct {
	mu   sync.Mutex
	mail []*mail.Message
	addr string
}

func (m *mailbox) received() []*mail.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*mail.Message(nil), m.mail...)
}

type mailSession struct{ box *mailbox }

func (s mailSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s mailSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s mailSession) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(bufio.NewReader(r))
	if err != nil {
		return err
	}
	s.box.mu.Lock()
	s.box.mail = append(s.box.mail, msg)
	s.box.mu.Unlock()
	return nil
}
func (s mailSession) Reset()        {}
func (s mailSession) Logout() error { return nil }

func startMailbox(t *testing.T) *mailbox {
	box := &mailbox{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return mailSession{box}, nil }))
	srv.Domain = "localhost"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	box.addr = l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return box
}

const unsubscribeSecret = "prefs-e2e-secret-0123456789abcdef0123456789"

// prefsAPI is the API with tokens for acme and globex, its preferences
// in the shared Redis, on a worker that sends e-mail to a real SMTP
// server and knows the API's public URL and the unsubscribe secret, as
// `onceflow worker` and `onceflow api` with the same environment do.
type prefsAPI struct {
	*teststack.Stack
	URL   string
	Box   *mailbox
	Hook  *testenv.Receiver
	Links *preferences.Links
}

func newPrefsAPI(t *testing.T) *prefsAPI {
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	critical, err := preferences.ParseCritical("security,billing")
	require.NoError(t, err)
	prefs := preferences.Config{Critical: critical, Secret: unsubscribeSecret, PublicURL: srv.URL}

	box := startMailbox(t)
	cfg := servers.WorkerConfig()
	cfg.Email = []email.Config{{Addr: box.addr, From: "notify@shop.example", TLS: "none"}}
	cfg.Preferences = prefs
	s := servers.New(t, cfg, nil)

	path := filepath.Join(t.TempDir(), "tokens")
	writeTokens(t, path, httpapi.HashLine("acme", acmeToken), httpapi.HashLine("globex", globexToken))
	tokens, err := httpapi.LoadTokens(path)
	require.NoError(t, err)
	handler = httpapi.Handler(starter.New(s.TC, s.Queue), slog.New(slog.NewTextHandler(io.Discard, nil)), httpapi.WithTokens(tokens),
		httpapi.WithPreferences(preferences.NewService(preferences.New(servers.Redis.Client(t), critical), prefs.Links())))
	return &prefsAPI{Stack: s, URL: srv.URL, Box: box, Hook: testenv.NewReceiver(t), Links: prefs.Links()}
}

func (a *prefsAPI) putPreferences(t *testing.T, token, subscriber, body string) answer {
	t.Helper()
	return call(t, "PUT", a.URL+"/v1/subscribers/"+subscriber+"/preferences", bearer(token, map[string]string{"Content-Type": "application/json"}), body)
}

func (a *prefsAPI) optOuts(t *testing.T, token, subscriber string) []any {
	t.Helper()
	got := call(t, "GET", a.URL+"/v1/subscribers/"+subscriber+"/preferences", bearer(token, nil), "")
	require.Equal(t, http.StatusOK, got.code, got.body)
	outs, ok := got.body["opt_outs"].([]any)
	require.True(t, ok, "opt_outs is a list: %v", got.body)
	return outs
}

// send posts a notification for acme's user-7 in category over e-mail and
// the webhook, waits for it, and returns its status as GET answers it.
func (a *prefsAPI) send(t *testing.T, key, category string) onceflow.Result {
	t.Helper()
	body := `{"subscriber":"user-7","category":"` + category + `","subject":"Hello","body":"News for you",
		"deliveries":[{"channel":"email","to":"ada@example.com"},{"channel":"webhook","to":"` + a.Hook.URL + `/hooks"}]}`
	posted := call(t, "POST", a.URL+"/v1/notifications", bearer(acmeToken, map[string]string{"Idempotency-Key": `"` + key + `"`, "Content-Type": "application/json"}), body)
	require.Equal(t, http.StatusAccepted, posted.code, posted.body)
	res, err := a.Client.ForTenant("acme").Wait(teststack.Context(t), key)
	require.NoError(t, err)
	return res
}

func unsubscribeHeader(t *testing.T, m *mail.Message) string {
	t.Helper()
	v := m.Header.Get("List-Unsubscribe")
	require.True(t, strings.HasPrefix(v, "<") && strings.HasSuffix(v, ">"), "List-Unsubscribe %q", v)
	return strings.TrimSuffix(strings.TrimPrefix(v, "<"), ">")
}

func oneClick(t *testing.T, link string) *http.Response {
	t.Helper()
	// What a mailbox provider sends (RFC 8058): no credentials, no cookies.
	resp, err := http.Post(link, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp
}

func TestPreferencesEndToEnd(t *testing.T) {
	a := newPrefsAPI(t)

	refused := a.putPreferences(t, acmeToken, "user-7", `{"opt_outs":[{"category":"marketing","channel":"email"},{"category":"security","channel":"email"}]}`)
	require.Equal(t, http.StatusBadRequest, refused.code)
	assert.Equal(t, "opt_outs[1].category", refused.body["field"], "a critical category cannot be opted out of: %v", refused.body)
	assert.Empty(t, a.optOuts(t, acmeToken, "user-7"), "a refused PUT changes nothing")

	put := a.putPreferences(t, acmeToken, "user-7", `{"opt_outs":[{"category":"marketing","channel":"email"}]}`)
	require.Equal(t, http.StatusOK, put.code, put.body)

	// Marketing: the e-mail is skipped, the webhook delivered.
	res := a.send(t, "prefs-marketing-1", "marketing")
	require.Len(t, res.Deliveries, 2)
	assert.Equal(t, onceflow.Skipped, res.Deliveries[0].Status)
	assert.Equal(t, `the subscriber opted out of category "marketing" on channel email; not sent`, res.Deliveries[0].Reason)
	assert.NotContains(t, res.Deliveries[0].Reason, "ada@", "no personal data in the reason")
	assert.Equal(t, onceflow.Delivered, res.Deliveries[1].Status)
	assert.Equal(t, 1, a.Hook.AppliedFor("prefs-marketing-1"), "the receiver saw the webhook")
	assert.Len(t, a.Hook.Log(), 1)
	assert.Empty(t, a.Box.received(), "no e-mail went out")
	status := call(t, "GET", a.URL+"/v1/notifications/prefs-marketing-1", bearer(acmeToken, nil), "")
	require.Equal(t, http.StatusOK, status.code)
	assert.Contains(t, status.body["result"].(map[string]any)["deliveries"].([]any)[0], "reason")
	assert.Equal(t, "skipped", status.body["result"].(map[string]any)["deliveries"].([]any)[0].(map[string]any)["status"])

	// News: sent by e-mail with a one-click unsubscribe link.
	res = a.send(t, "prefs-news-1", "news")
	assert.Equal(t, onceflow.Delivered, res.Deliveries[0].Status)
	mails := a.Box.received()
	require.Len(t, mails, 1)
	assert.Equal(t, "List-Unsubscribe=One-Click", mails[0].Header.Get("List-Unsubscribe-Post"))
	link := unsubscribeHeader(t, mails[0])
	require.True(t, strings.HasPrefix(link, a.URL+"/v1/unsubscribe/"), link)

	// The confirm page shows what the link does and changes nothing.
	page, err := http.Get(link)
	require.NoError(t, err)
	html, _ := io.ReadAll(page.Body)
	_ = page.Body.Close()
	assert.Equal(t, http.StatusOK, page.StatusCode)
	assert.Contains(t, string(html), `name="List-Unsubscribe" value="One-Click"`)
	assert.Contains(t, string(html), "news messages on email")
	assert.Len(t, a.optOuts(t, acmeToken, "user-7"), 1, "GET of the link changes nothing")

	// A tampered link and an expired one are refused and change nothing.
	tampered := link[:len(link)-3] + map[bool]string{true: "AAA", false: "BBB"}[!strings.HasSuffix(link, "AAA")]
	assert.Equal(t, http.StatusBadRequest, oneClick(t, tampered).StatusCode)
	payloadSwapped, err := a.Links.URL(preferences.Link{Tenant: "acme", Subscriber: "user-8", Category: "news", Channel: "email", Issued: time.Now().Add(-time.Hour), Expires: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	p1, _, _ := strings.Cut(strings.TrimPrefix(payloadSwapped, a.URL+"/v1/unsubscribe/"), ".")
	_, sig, _ := strings.Cut(strings.TrimPrefix(link, a.URL+"/v1/unsubscribe/"), ".")
	assert.Equal(t, http.StatusBadRequest, oneClick(t, a.URL+"/v1/unsubscribe/"+p1+"."+sig).StatusCode, "another subscriber under this link's signature")
	expired, err := a.Links.URL(preferences.Link{Tenant: "acme", Subscriber: "user-7", Category: "news", Channel: "email", Issued: time.Now().Add(-time.Hour), Expires: time.Now().Add(-time.Second)})
	require.NoError(t, err)
	assert.Equal(t, http.StatusGone, oneClick(t, expired).StatusCode)
	noBody, err := http.Post(link, "application/x-www-form-urlencoded", strings.NewReader("unsubscribe=yes"))
	require.NoError(t, err)
	_ = noBody.Body.Close()
	assert.Equal(t, http.StatusBadRequest, noBody.StatusCode, "RFC 8058's body is required")
	assert.Len(t, a.optOuts(t, acmeToken, "user-7"), 1, "refused links changed nothing")
	assert.Empty(t, a.optOuts(t, acmeToken, "user-8"))

	// The one-click POST from the e-mail's header opts the subscriber out.
	assert.Equal(t, http.StatusOK, oneClick(t, link).StatusCode)
	assert.Equal(t, []any{
		map[string]any{"category": "marketing", "channel": "email"},
		map[string]any{"category": "news", "channel": "email"},
	}, a.optOuts(t, acmeToken, "user-7"))
	res = a.send(t, "prefs-news-2", "news")
	assert.Equal(t, onceflow.Skipped, res.Deliveries[0].Status)
	assert.Len(t, a.Box.received(), 1, "no second e-mail")

	// Opted out of everything, on every channel: a critical category
	// still goes out, without an unsubscribe link.
	put = a.putPreferences(t, acmeToken, "user-7", `{"opt_outs":[{"category":"*","channel":"*"}]}`)
	require.Equal(t, http.StatusOK, put.code, put.body)
	res = a.send(t, "prefs-security-1", "security")
	assert.Equal(t, onceflow.Delivered, res.Deliveries[0].Status)
	assert.Equal(t, onceflow.Delivered, res.Deliveries[1].Status)
	mails = a.Box.received()
	require.Len(t, mails, 2)
	assert.Empty(t, mails[1].Header.Get("List-Unsubscribe"), "a critical category offers no unsubscribe")

	// Everything skipped: the notification is skipped, and so says its
	// search attribute.
	res = a.send(t, "prefs-marketing-2", "marketing")
	assert.Equal(t, onceflow.Skipped, res.Status())
	desc, err := a.TC.DescribeWorkflowExecution(context.Background(), workflows.ID(onceflow.ScopedKey("acme", "prefs-marketing-2")), "")
	require.NoError(t, err)
	var attr string
	require.NoError(t, converter.GetDefaultDataConverter().FromPayload(desc.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()[workflows.StatusAttribute.GetName()], &attr))
	assert.Equal(t, "skipped", attr)
	assert.Equal(t, 0, a.Hook.AppliedFor("prefs-marketing-2"), "the skipped webhook was not sent")
}

func TestPreferencesAreTheTokensTenants(t *testing.T) {
	a := newPrefsAPI(t)
	require.Equal(t, http.StatusOK, a.putPreferences(t, acmeToken, "user-t", `{"opt_outs":[{"category":"marketing","channel":"email"}]}`).code)

	assert.Empty(t, a.optOuts(t, globexToken, "user-t"), "globex cannot read acme's user-t")
	require.Equal(t, http.StatusOK, a.putPreferences(t, globexToken, "user-t", `{"opt_outs":[]}`).code)
	assert.Len(t, a.optOuts(t, acmeToken, "user-t"), 1, "globex's PUT did not touch acme's user-t")

	for _, route := range []struct{ method, path string }{
		{"GET", "/v1/subscribers/user-t/preferences"},
		{"PUT", "/v1/subscribers/user-t/preferences"},
		{"POST", "/v1/subscribers/user-t/unsubscribe-links"},
	} {
		got := call(t, route.method, a.URL+route.path, map[string]string{"Content-Type": "application/json"}, `{"opt_outs":[]}`)
		assert.Equal(t, http.StatusUnauthorized, got.code, "%s %s without a token", route.method, route.path)
	}
	assert.Len(t, a.optOuts(t, acmeToken, "user-t"), 1)

	// A link made for globex opts out globex's user-t only.
	made := call(t, "POST", a.URL+"/v1/subscribers/user-t/unsubscribe-links", bearer(globexToken, map[string]string{"Content-Type": "application/json"}), `{"category":"news","channel":"*","expires_in":"1h"}`)
	require.Equal(t, http.StatusCreated, made.code, made.body)
	assert.Equal(t, http.StatusOK, oneClick(t, made.body["url"].(string)).StatusCode)
	assert.Equal(t, []any{map[string]any{"category": "news", "channel": "*"}}, a.optOuts(t, globexToken, "user-t"))
	assert.Equal(t, []any{map[string]any{"category": "marketing", "channel": "email"}}, a.optOuts(t, acmeToken, "user-t"))
}

func TestBadPreferenceRequestsNameTheField(t *testing.T) {
	a := newPrefsAPI(t)
	for _, c := range []struct{ method, path, body, field string }{
		{"PUT", "/v1/subscribers/user-b/preferences", `{"opt_outs":[{"category":"marketing","channel":"fax"}]}`, "opt_outs[0].channel"},
		{"PUT", "/v1/subscribers/user-b/preferences", `{"opt_outs":[{"category":"Marketing","channel":"email"}]}`, "opt_outs[0].category"},
		{"PUT", "/v1/subscribers/user-b/preferences", `{"opt_outs":[{"channel":"email"}]}`, "opt_outs[0].category"},
		{"PUT", "/v1/subscribers/user-b/preferences", `{"optouts":[]}`, "optouts"},
		{"PUT", "/v1/subscribers/user-b/preferences", `not json`, "preferences"},
		{"PUT", "/v1/subscribers/" + url.PathEscape("ada@example.com") + "/preferences", `{"opt_outs":[]}`, "subscriber"},
		{"GET", "/v1/subscribers/" + url.PathEscape("ada@example.com") + "/preferences", ``, "subscriber"},
		{"POST", "/v1/subscribers/user-b/unsubscribe-links", `{"category":"billing","channel":"email"}`, "category"},
		{"POST", "/v1/subscribers/user-b/unsubscribe-links", `{"category":"news","channel":"pager"}`, "channel"},
		{"POST", "/v1/subscribers/user-b/unsubscribe-links", `{"category":"news","channel":"email","expires_in":"forever"}`, "expires_in"},
		{"POST", "/v1/subscribers/user-b/unsubscribe-links", `{"category":"news","channel":"email","expires_in":"9000h"}`, "expires_in"},
		{"POST", "/v1/subscribers/user-b/unsubscribe-links", `{"category":"news","channel":"email","ttl":"1h"}`, "ttl"},
		{"POST", "/v1/subscribers/user-b/unsubscribe-links", `[]`, "body"},
	} {
		got := call(t, c.method, a.URL+c.path, bearer(acmeToken, map[string]string{"Content-Type": "application/json"}), c.body)
		assert.Equal(t, http.StatusBadRequest, got.code, "%s %s %s", c.method, c.path, c.body)
		assert.Equal(t, c.field, got.body["field"], "%s %s %s: %v", c.method, c.path, c.body, got.body)
	}
	assert.Empty(t, a.optOuts(t, acmeToken, "user-b"), "nothing was stored")
}

func TestConfirmPageEscapesWhatItShows(t *testing.T) {
	a := newPrefsAPI(t)
	// Every value on the page comes from a signed link, and the ids allow
	// no markup; the page still escapes, and sets a CSP without scripts.
	l, err := a.Links.URL(preferences.Link{Subscriber: "user-7", Category: "news", Channel: "*", Issued: time.Now(), Expires: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	resp, err := http.Get(l)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'none'")
	assert.Equal(t, "no-referrer", resp.Header.Get("Referrer-Policy"))
	bad, err := http.Get(a.URL + "/v1/unsubscribe/" + url.PathEscape("<script>alert(1)</script>"))
	require.NoError(t, err)
	body, _ := io.ReadAll(bad.Body)
	_ = bad.Body.Close()
	assert.Equal(t, http.StatusBadRequest, bad.StatusCode)
	assert.NotContains(t, string(body), "<script>")
}

func TestOpenAPIDocumentsThePreferenceRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	require.NoError(t, yaml.Unmarshal(httpapi.OpenAPI, &doc))
	type operation struct {
		Security  *[]map[string][]string `yaml:"security"`
		Responses map[string]any         `yaml:"responses"`
	}
	opOf := func(path, method string) operation {
		node, ok := doc.Paths[path][method]
		require.True(t, ok, "%s %s", method, path)
		var op operation
		require.NoError(t, node.Decode(&op), "%s %s", method, path)
		return op
	}
	for path, methods := range map[string][]string{
		"/v1/subscribers/{id}/preferences":       {"get", "put"},
		"/v1/subscribers/{id}/unsubscribe-links": {"post"},
	} {
		for _, m := range methods {
			op := opOf(path, m)
			assert.Nil(t, op.Security, "%s %s takes the global bearer security", m, path)
			assert.Contains(t, op.Responses, "401", "%s %s", m, path)
		}
	}
	for _, m := range []string{"get", "post"} {
		op := opOf("/v1/unsubscribe/{token}", m)
		require.NotNil(t, op.Security)
		assert.Empty(t, *op.Security, "%s /v1/unsubscribe/{token} is public: the signature authenticates", m)
	}
}
