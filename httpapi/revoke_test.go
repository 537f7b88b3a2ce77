package httpapi_test

import (
	"context"
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

	"github.com/onceflow/onceflow/feed"
	"github.com/onceflow/onceflow/httpapi"
	"github.com/onceflow/onceflow/preferences"
	"github.com/onceflow/onceflow/revocation"
	"github.com/onceflow/onceflow/starter"
)

// newRevocationAPI serves the feed, the preferences and the revocation
// route with tokens for acme and globex, on Redis.
func newRevocationAPI(t *testing.T) string {
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	s := servers.New(t, servers.WorkerConfig(), nil)
	path := filepath.Join(t.TempDir(), "tokens")
	writeTokens(t, path, httpapi.HashLine("acme", acmeToken), httpapi.HashLine("globex", globexToken))
	tokens, err := httpapi.LoadTokens(path)
	require.NoError(t, err)
	signer, err := feed.NewSigner(feedSecret)
	require.NoError(t, err)
	rdb := servers.Redis.Client(t)
	prefs := preferences.Config{Secret: unsubscribeSecret, PublicURL: srv.URL}
	handler = httpapi.Handler(starter.New(s.TC, s.Queue), slog.New(slog.NewTextHandler(io.Discard, nil)), httpapi.WithTokens(tokens),
		httpapi.WithFeed(feed.NewService(feed.New(rdb, time.Hour, time.Hour)), signer, nil),
		httpapi.WithPreferences(preferences.NewService(preferences.New(rdb, nil), prefs.Links())),
		httpapi.WithRevocation(revocation.New(rdb)))
	return srv.URL
}

func subscriberToken(t *testing.T, url, appToken, sub string) string {
	t.Helper()
	a := call(t, "POST", url+"/v1/subscribers/"+sub+"/tokens", bearer(appToken, nil), "")
	require.Equal(t, http.StatusCreated, a.code, a.body)
	return a.body["token"].(string)
}

func unsubscribeLink(t *testing.T, url, appToken, sub string) string {
	t.Helper()
	a := call(t, "POST", url+"/v1/subscribers/"+sub+"/unsubscribe-links", bearer(appToken, nil), `{"category":"news","channel":"email"}`)
	require.Equal(t, http.StatusCreated, a.code, a.body)
	return a.body["url"].(string)
}

func linkPage(t *testing.T, link string) int {
	t.Helper()
	resp, err := http.Get(link)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// An app revokes every subscriber token and unsubscribe link issued to one
// of its subscribers until now: they are refused (401 invalid_token, 410),
// those issued afterwards work, another tenant cannot revoke them, and its
// subscriber of the same id keeps its own.
func TestRevokeRefusesWhatWasIssuedBefore(t *testing.T) {
	url := newRevocationAPI(t)
	sub := "u-revoke"
	feedURL := url + "/v1/subscribers/" + sub + "/feed"
	acmeOld, globexOld := subscriberToken(t, url, acmeToken, sub), subscriberToken(t, url, globexToken, sub)
	acmeLink, globexLink := unsubscribeLink(t, url, acmeToken, sub), unsubscribeLink(t, url, globexToken, sub)

	a := call(t, "POST", url+"/v1/subscribers/"+sub+"/revoke", bearer(acmeOld, nil), "")
	assert.Equal(t, http.StatusUnauthorized, a.code, "a subscriber token cannot revoke: %v", a.body)

	a = call(t, "POST", url+"/v1/subscribers/"+sub+"/revoke", bearer(globexToken, nil), "")
	require.Equal(t, http.StatusOK, a.code, a.body)
	assert.Equal(t, http.StatusOK, call(t, "GET", feedURL, bearer(acmeOld, nil), "").code, "globex revoked its own subscriber, not acme's")
	assert.Equal(t, http.StatusOK, linkPage(t, acmeLink), "globex revoked its own subscriber's links, not acme's")
	assert.Equal(t, http.StatusUnauthorized, call(t, "GET", feedURL, bearer(globexOld, nil), "").code)
	assert.Equal(t, http.StatusGone, linkPage(t, globexLink))

	a = call(t, "POST", url+"/v1/subscribers/"+sub+"/revoke", bearer(acmeToken, nil), "")
	require.Equal(t, http.StatusOK, a.code, a.body)
	assert.Equal(t, sub, a.body["subscriber"])
	nb, err := time.Parse(time.RFC3339Nano, a.body["not_before"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), nb, 5*time.Second)

	refused := call(t, "GET", feedURL, bearer(acmeOld, nil), "")
	assert.Equal(t, http.StatusUnauthorized, refused.code)
	assert.Equal(t, `Bearer realm="onceflow", error="invalid_token"`, refused.header.Get("WWW-Authenticate"))
	assert.Contains(t, refused.body["detail"], "revoked")
	// Not call: an accepted stream would never end.
	streamed, err := http.Get(feedURL + "/stream?access_token=" + acmeOld)
	require.NoError(t, err)
	_ = streamed.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, streamed.StatusCode, "nor in the stream's URL")
	assert.Equal(t, http.StatusGone, linkPage(t, acmeLink))
	resp, err := http.Post(acmeLink, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusGone, resp.StatusCode, "the one-click POST is refused too")
	assert.Empty(t, call(t, "GET", url+"/v1/subscribers/"+sub+"/preferences", bearer(acmeToken, nil), "").body["opt_outs"], "and changed nothing")

	time.Sleep(2 * time.Millisecond)
	assert.Equal(t, http.StatusOK, call(t, "GET", feedURL, bearer(subscriberToken(t, url, acmeToken, sub), nil), "").code, "a token issued afterwards works")
	assert.Equal(t, http.StatusOK, linkPage(t, unsubscribeLink(t, url, acmeToken, sub)), "a link issued afterwards works")

	bad := call(t, "POST", url+"/v1/subscribers/a@b.c/revoke", bearer(acmeToken, nil), "")
	assert.Equal(t, http.StatusBadRequest, bad.code)
	assert.Equal(t, "subscriber", bad.body["field"])
}

// Without Redis the route says so, and revokes nothing.
func TestRevokeWithoutRedisIs503(t *testing.T) {
	_, srv := newAPI(t)
	a := call(t, "POST", srv.URL+"/v1/subscribers/u1/revoke", nil, "")
	assert.Equal(t, http.StatusServiceUnavailable, a.code)
	assert.Contains(t, a.body["detail"], "REDIS_URL")
}

// A stream opened with a subscriber token ends within a keep-alive of the
// token's revocation, and its reconnection is refused; a stream of the
// app's token goes on.
func TestRevokeEndsAnOpenStream(t *testing.T) {
	url := newRevocationAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sub := "u-revoke-stream"
	streamURL := url + "/v1/subscribers/" + sub + "/feed/stream"
	tok := subscriberToken(t, url, acmeToken, sub)
	events, code := openStream(t, ctx, streamURL+"?access_token="+tok, nil)
	require.Equal(t, http.StatusOK, code)
	apps, code := openStream(t, ctx, streamURL, bearer(acmeToken, nil))
	require.Equal(t, http.StatusOK, code)

	a := call(t, "POST", url+"/v1/subscribers/"+sub+"/revoke", bearer(acmeToken, nil), "")
	require.Equal(t, http.StatusOK, a.code, a.body)
	start := time.Now()
	for range events {
	}
	assert.Less(t, time.Since(start), 35*time.Second, "the stream ended within a keep-alive (25s)")
	require.NoError(t, ctx.Err(), "the stream did not end")
	select {
	case _, open := <-apps:
		assert.True(t, open, "the app's stream goes on")
	default:
	}
	_, code = openStream(t, ctx, streamURL+"?access_token="+tok, nil)
	assert.Equal(t, http.StatusUnauthorized, code)
}
