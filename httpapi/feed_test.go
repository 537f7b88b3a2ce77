package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
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
	"gopkg.in/yaml.v3"

	"github.com/onceflow/onceflow/feed"
	"github.com/onceflow/onceflow/httpapi"
	"github.com/onceflow/onceflow/internal/teststack"
	"github.com/onceflow/onceflow/starter"
)

const (
	feedSecret = "feed-secret-0123456789abcdef0123456789"
	appOrigin  = "https://app.example"
)

// newFeedAPI serves the API with tokens for acme and globex, the feed,
// subscriber tokens and one allowed browser origin, on a worker of its own.
func newFeedAPI(t *testing.T) (*teststack.Stack, *httptest.Server, *feed.Store, *feed.Signer) {
	return newFeedAPIWith(t, appOrigin, nil)
}

// newFeedAPIWith is newFeedAPI with the allowed origin given and the
// API's handler wrapped by wrap when it is not nil.
func newFeedAPIWith(t *testing.T, origin string, wrap func(http.Handler) http.Handler) (*teststack.Stack, *httptest.Server, *feed.Store, *feed.Signer) {
	s := servers.New(t, servers.WorkerConfig(), nil)
	path := filepath.Join(t.TempDir(), "tokens")
	writeTokens(t, path, httpapi.HashLine("acme", acmeToken), httpapi.HashLine("globex", globexToken))
	tokens, err := httpapi.LoadTokens(path)
	require.NoError(t, err)
	store := feed.New(servers.Redis.Client(t), time.Hour, time.Hour)
	signer, err := feed.NewSigner(feedSecret)
	require.NoError(t, err)
	c := starter.New(s.TC, s.Queue)
	h := httpapi.Handler(c, slog.New(slog.NewTextHandler(io.Discard, nil)),
		httpapi.WithTokens(tokens), httpapi.WithFeed(feed.NewService(store), signer, []string{origin}))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return s, srv, store, signer
}

func inAppJSON(sub, body string) string {
	return `{"subject":"Hi","body":"` + body + `","deliveries":[{"channel":"inapp","to":"` + sub + `"}]}`
}

func items(t *testing.T, a answer) []map[string]any {
	t.Helper()
	raw, ok := a.body["items"].([]any)
	require.True(t, ok, "%v", a.body)
	var out []map[string]any
	for _, it := range raw {
		out = append(out, it.(map[string]any))
	}
	return out
}

func TestFeedThroughTheAPIAndWhoMayReadIt(t *testing.T) {
	s, srv, _, signer := newFeedAPI(t)
	ctx := teststack.Context(t)
	for _, key := range []string{"feed-api-1", "feed-api-2"} {
		a := call(t, "POST", srv.URL+"/v1/notifications", bearer(acmeToken, map[string]string{"Idempotency-Key": `"` + key + `"`}), inAppJSON("u1", "body of "+key))
		require.Equal(t, http.StatusAccepted, a.code, a.body)
		_, err := s.Client.ForTenant("acme").Wait(ctx, key)
		require.NoError(t, err)
	}
	feedURL := srv.URL + "/v1/subscribers/u1/feed"

	page := call(t, "GET", feedURL+"?limit=1", bearer(acmeToken, nil), "")
	require.Equal(t, http.StatusOK, page.code, page.body)
	got := items(t, page)
	require.Len(t, got, 1)
	assert.Equal(t, "body of feed-api-2", got[0]["body"], "newest first")
	assert.Equal(t, "feed-api-2", got[0]["key"])
	assert.EqualValues(t, 2, page.body["unread"])
	next := call(t, "GET", feedURL+"?limit=1&cursor="+page.body["next_cursor"].(string), bearer(acmeToken, nil), "")
	assert.Equal(t, "body of feed-api-1", items(t, next)[0]["body"])

	other := call(t, "GET", feedURL, bearer(globexToken, nil), "")
	require.Equal(t, http.StatusOK, other.code)
	assert.Empty(t, other.body["items"], "another tenant's token reads its own, empty feed of u1")

	minted := call(t, "POST", srv.URL+"/v1/subscribers/u1/tokens", bearer(acmeToken, nil), `{"ttl":"5m"}`)
	require.Equal(t, http.StatusCreated, minted.code, minted.body)
	tok := minted.body["token"].(string)
	assert.True(t, strings.HasPrefix(tok, feed.TokenPrefix))

	withTok := call(t, "GET", feedURL, bearer(tok, nil), "")
	require.Equal(t, http.StatusOK, withTok.code, withTok.body)
	assert.Len(t, items(t, withTok), 2, "the subscriber token reads its subscriber's feed in its tenant")

	for name, c := range map[string]struct {
		method, url, token string
		code               int
	}{
		"for another subscriber":                 {"GET", srv.URL + "/v1/subscribers/u2/feed", tok, http.StatusForbidden},
		"tampered":                               {"GET", feedURL, tok[:len(tok)-2] + "xx", http.StatusUnauthorized},
		"no token":                               {"GET", feedURL, "", http.StatusUnauthorized},
		"a subscriber token mints":               {"POST", srv.URL + "/v1/subscribers/u1/tokens", tok, http.StatusUnauthorized},
		"a subscriber token reads notifications": {"GET", srv.URL + "/v1/notifications/feed-api-1", tok, http.StatusUnauthorized},
		"a subscriber token sends":               {"POST", srv.URL + "/v1/notifications", tok, http.StatusUnauthorized},
	} {
		hdr := map[string]string{"Idempotency-Key": `"feed-api-3"`}
		if c.token != "" {
			hdr = bearer(c.token, hdr)
		}
		a := call(t, c.method, c.url, hdr, inAppJSON("u1", "x"))
		assert.Equal(t, c.code, a.code, "%s: %v", name, a.body)
	}
	expired, _, err := signer.Mint("acme", "u1", time.Minute, time.Now().Add(-2*time.Minute))
	require.NoError(t, err)
	a := call(t, "GET", feedURL, bearer(expired, nil), "")
	assert.Equal(t, http.StatusUnauthorized, a.code)
	assert.Contains(t, a.body["error"], "expired")
	otherSecret, err := feed.NewSigner("another-secret-0123456789abcdef0123456789")
	require.NoError(t, err)
	forged, _, err := otherSecret.Mint("acme", "u1", time.Minute, time.Now())
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, call(t, "GET", feedURL, bearer(forged, nil), "").code)
	globexTok, _, err := signer.Mint("globex", "u1", time.Minute, time.Now())
	require.NoError(t, err)
	assert.Empty(t, call(t, "GET", feedURL, bearer(globexTok, nil), "").body["items"], "globex's u1 is not acme's u1")

	a = call(t, "GET", feedURL+"?access_token="+tok, nil, "")
	assert.Equal(t, http.StatusBadRequest, a.code, "a token in the URL only on the stream route")
	assert.Equal(t, "access_token", a.body["field"])
	a = call(t, "GET", feedURL+"?limit=500", bearer(tok, nil), "")
	assert.Equal(t, "limit", a.body["field"])
	a = call(t, "GET", feedURL+"?cursor=nope", bearer(tok, nil), "")
	assert.Equal(t, "cursor", a.body["field"])
	a = call(t, "GET", srv.URL+"/v1/subscribers/ada@example.com/feed", bearer(acmeToken, nil), "")
	assert.Equal(t, http.StatusBadRequest, a.code)
	assert.Equal(t, "subscriber", a.body["field"])

	id := got[0]["id"].(string)
	a = call(t, "POST", feedURL+"/"+id+"/read", bearer(tok, nil), "")
	require.Equal(t, http.StatusOK, a.code, a.body)
	a = call(t, "POST", feedURL+"/dlv_nope/read", bearer(tok, nil), "")
	assert.Equal(t, http.StatusNotFound, a.code)
	a = call(t, "POST", srv.URL+"/v1/subscribers/u1/feed/"+id+"/read", bearer(globexToken, nil), "")
	assert.Equal(t, http.StatusNotFound, a.code, "globex cannot touch acme's items")
	page = call(t, "GET", feedURL, bearer(tok, nil), "")
	assert.EqualValues(t, 1, page.body["unread"])
	assert.Equal(t, true, items(t, page)[0]["read"])
	a = call(t, "POST", feedURL+"/read-all", bearer(acmeToken, nil), "")
	assert.EqualValues(t, 1, a.body["marked"])
	assert.EqualValues(t, 0, call(t, "GET", feedURL, bearer(tok, nil), "").body["unread"])
}

func TestFeedCORS(t *testing.T) {
	_, srv, _, _ := newFeedAPI(t)
	req, err := http.NewRequest("OPTIONS", srv.URL+"/v1/subscribers/u1/feed/stream", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", appOrigin)
	req.Header.Set("Access-Control-Request-Method", "GET")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Equal(t, appOrigin, resp.Header.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), "Authorization")
	assert.Empty(t, resp.Header.Get("Access-Control-Allow-Credentials"))

	a := call(t, "GET", srv.URL+"/v1/subscribers/u1/feed", bearer(acmeToken, map[string]string{"Origin": appOrigin}), "")
	assert.Equal(t, http.StatusOK, a.code)
	assert.Equal(t, appOrigin, a.header.Get("Access-Control-Allow-Origin"))
	a = call(t, "GET", srv.URL+"/v1/subscribers/u1/feed", bearer(acmeToken, map[string]string{"Origin": "https://evil.example"}), "")
	assert.Equal(t, http.StatusForbidden, a.code)
	assert.Empty(t, a.header.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, a.body["error"], httpapi.EnvFeedOrigins)
	// The token route is for the app's backend, not for browsers.
	a = call(t, "POST", srv.URL+"/v1/subscribers/u1/tokens", bearer(acmeToken, map[string]string{"Origin": appOrigin}), "")
	assert.Empty(t, a.header.Get("Access-Control-Allow-Origin"))
}

// event is one Server-Sent Event.
type event struct{ id, name, data string }

// openStream opens the feed stream and returns its events as they come.
func openStream(t *testing.T, ctx context.Context, url string, header map[string]string) (<-chan event, int) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	if resp.StatusCode != http.StatusOK {
		_ = resp.Body.Close()
		return nil, resp.StatusCode
	}
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	out := make(chan event, 16)
	go func() {
		defer func() { _ = resp.Body.Close() }()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		var e event
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if e.name != "" {
					out <- e
				}
				e = event{}
			case strings.HasPrefix(line, "id: "):
				e.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				e.name = line[7:]
			case strings.HasPrefix(line, "data: "):
				e.data = line[6:]
			}
		}
	}()
	return out, resp.StatusCode
}

func next(t *testing.T, ctx context.Context, events <-chan event) feed.Item {
	t.Helper()
	select {
	case e, ok := <-events:
		require.True(t, ok, "the stream ended")
		require.Equal(t, "item", e.name)
		var it feed.Item
		require.NoError(t, json.Unmarshal([]byte(e.data), &it))
		assert.Equal(t, e.id, it.Cursor)
		return it
	case <-ctx.Done():
		t.Fatal("no event came")
	}
	return feed.Item{}
}

func TestFeedStreamServesNewItemsAndResumes(t *testing.T) {
	s, srv, _, signer := newFeedAPI(t)
	ctx := teststack.Context(t)
	tok, _, err := signer.Mint("acme", "u-stream", time.Minute, time.Now())
	require.NoError(t, err)
	streamURL := srv.URL + "/v1/subscribers/u-stream/feed/stream"

	_, code := openStream(t, ctx, srv.URL+"/v1/subscribers/u-other/feed/stream?access_token="+tok, nil)
	assert.Equal(t, http.StatusForbidden, code)
	_, code = openStream(t, ctx, streamURL, nil)
	assert.Equal(t, http.StatusUnauthorized, code)

	sctx, stop := context.WithCancel(ctx)
	events, code := openStream(t, sctx, streamURL+"?access_token="+tok, nil)
	require.Equal(t, http.StatusOK, code)
	send := func(key string) {
		a := call(t, "POST", srv.URL+"/v1/notifications", bearer(acmeToken, map[string]string{"Idempotency-Key": `"` + key + `"`}), inAppJSON("u-stream", "body of "+key))
		require.Equal(t, http.StatusAccepted, a.code, a.body)
		_, err := s.Client.ForTenant("acme").Wait(ctx, key)
		require.NoError(t, err)
	}
	send("stream-1")
	first := next(t, ctx, events)
	assert.Equal(t, "body of stream-1", first.Body)
	stop()

	// Two items arrive while the browser is away; it resumes with the
	// last id it saw, as EventSource does, and gets just those, once.
	send("stream-2")
	send("stream-3")
	events, code = openStream(t, ctx, streamURL, map[string]string{"Authorization": "Bearer " + tok, "Last-Event-ID": first.Cursor})
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "body of stream-2", next(t, ctx, events).Body)
	assert.Equal(t, "body of stream-3", next(t, ctx, events).Body)
	send("stream-4")
	assert.Equal(t, "body of stream-4", next(t, ctx, events).Body)

	// A stream ends when its subscriber token expires.
	short, _, err := signer.Mint("acme", "u-stream", time.Second, time.Now())
	require.NoError(t, err)
	events, code = openStream(t, ctx, streamURL+"?access_token="+short, nil)
	require.Equal(t, http.StatusOK, code)
	for range events {
	}
}

func TestOpenAPIDocumentCoversTheFeedRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	require.NoError(t, yaml.Unmarshal(httpapi.OpenAPI, &doc))
	for path, method := range map[string]string{
		"/v1/subscribers/{id}/tokens":           "post",
		"/v1/subscribers/{id}/feed":             "get",
		"/v1/subscribers/{id}/feed/{item}/read": "post",
		"/v1/subscribers/{id}/feed/read-all":    "post",
		"/v1/subscribers/{id}/feed/stream":      "get",
	} {
		assert.Contains(t, doc.Paths[path], method, "%s %s", method, path)
	}
}

// TestAnAppTokenInAURLIsRefused: only a short-lived subscriber token may
// travel in the stream's URL. The app's API token there is refused with
// 400 naming access_token, before it is checked, whether it is valid or
// not; the same token in the Authorization header opens the stream.
func TestAnAppTokenInAURLIsRefused(t *testing.T) {
	_, srv, _, signer := newFeedAPI(t)
	ctx := teststack.Context(t)
	streamURL := srv.URL + "/v1/subscribers/u-url/feed/stream"
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	for _, tok := range []string{acmeToken, "not-a-token"} {
		// As a stream: a stream that opened would never end a call.
		_, code := openStream(t, sctx, streamURL+"?access_token="+tok, nil)
		assert.Equal(t, http.StatusBadRequest, code)
	}
	a := call(t, "GET", streamURL+"?access_token=not-a-token", nil, "")
	assert.Equal(t, "access_token", a.body["field"])

	_, code := openStream(t, sctx, streamURL, bearer(acmeToken, nil))
	assert.Equal(t, http.StatusOK, code, "the app's token in the header")
	sub, _, err := signer.Mint("acme", "u-url", time.Minute, time.Now())
	require.NoError(t, err)
	_, code = openStream(t, sctx, streamURL+"?access_token="+sub, nil)
	assert.Equal(t, http.StatusOK, code, "a subscriber token in the URL")
}

// TestOneChallengeRuleOnEveryRoute: RFC 6750's challenge is the same on
// every route that needs a token: a request without credentials gets the
// bare challenge, a malformed Authorization header invalid_request, and a
// token that was given but is not valid invalid_token.
func TestOneChallengeRuleOnEveryRoute(t *testing.T) {
	_, srv, _, _ := newFeedAPI(t)
	routes := []struct{ method, path string }{
		{"GET", "/v1/notifications/challenge-1"},
		{"GET", "/v1/broadcasts/challenge-1"},
		{"GET", "/v1/subscribers/u1/preferences"},
		{"GET", "/v1/subscribers/u1/feed"},
		{"POST", "/v1/subscribers/u1/feed/read-all"},
		{"GET", "/v1/subscribers/u1/digests/d1"},
	}
	for _, route := range routes {
		for _, tc := range []struct {
			name, authorization, challenge string
		}{
			{"no credentials", "", `Bearer realm="onceflow"`},
			{"malformed", "Basic dXNlcjpwYXNz", `Bearer realm="onceflow", error="invalid_request"`},
			{"invalid token", "Bearer not-a-token", `Bearer realm="onceflow", error="invalid_token"`},
			{"invalid subscriber token", "Bearer " + feed.TokenPrefix + "e30.AAAA", `Bearer realm="onceflow", error="invalid_token"`},
		} {
			header := map[string]string{}
			if tc.authorization != "" {
				header["Authorization"] = tc.authorization
			}
			a := call(t, route.method, srv.URL+route.path, header, "")
			require.Equal(t, http.StatusUnauthorized, a.code, "%s %s, %s", route.method, route.path, tc.name)
			assert.Equal(t, tc.challenge, a.header.Get("WWW-Authenticate"), "%s %s, %s", route.method, route.path, tc.name)
		}
	}
}
