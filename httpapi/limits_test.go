package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/feed"
	"github.com/onceflow/onceflow/httpapi"
	"github.com/onceflow/onceflow/internal/openapitest"
	"github.com/onceflow/onceflow/preferences"
	"github.com/onceflow/onceflow/ratelimit"
	"github.com/onceflow/onceflow/starter"
)

// limitedAPI serves the feed and the unsubscribe routes with tokens for
// acme and globex, subscriber tokens, unsubscribe links and the limits
// given, their budgets in rdb; the feed and the preferences are in the
// shared Redis.
type limitedAPI struct {
	URL    string
	signer *feed.Signer
	links  *preferences.Links
	prefs  *preferences.Service
}

func newLimitedAPI(t *testing.T, rdb redis.Scripter, lim httpapi.Limits) *limitedAPI {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	writeTokens(t, path, httpapi.HashLine("acme", acmeToken), httpapi.HashLine("globex", globexToken))
	tokens, err := httpapi.LoadTokens(path)
	require.NoError(t, err)
	signer, err := feed.NewSigner(feedSecret)
	require.NoError(t, err)
	shared := servers.Redis.Client(t)
	links := preferences.Config{Secret: unsubscribeSecret, PublicURL: "https://notify.example"}.Links()
	prefs := preferences.NewService(preferences.New(shared, nil), links)
	h := httpapi.Handler(starter.New(servers.Temporal.GetDefaultClient(), "limits"), slog.New(slog.NewTextHandler(io.Discard, nil)),
		httpapi.WithTokens(tokens), httpapi.WithFeed(feed.NewService(feed.New(shared, time.Hour, time.Hour)), signer, []string{appOrigin}),
		httpapi.WithPreferences(prefs), httpapi.WithLimits(rdb, lim))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &limitedAPI{URL: srv.URL, signer: signer, links: links, prefs: prefs}
}

// token mints a subscriber token for tenant's subscriber.
func (a *limitedAPI) token(t *testing.T, tenant, subscriber string) string {
	t.Helper()
	tok, _, err := a.signer.Mint(tenant, subscriber, time.Hour, time.Now())
	require.NoError(t, err)
	return tok
}

// link makes an unsubscribe link's path for acme's subscriber.
func (a *limitedAPI) link(t *testing.T, subscriber, category string) string {
	t.Helper()
	tok, err := a.links.Token(preferences.Link{Tenant: "acme", Subscriber: subscriber, Category: category, Channel: "email", Issued: time.Now(), Expires: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	return a.URL + preferences.LinkPath + tok
}

// lastAddress numbers the loopback addresses the tests' clients come
// from, so that no two tests share a client address's budget.
var lastAddress atomic.Uint32

// peer is a client whose connections come from a loopback address of its
// own (Linux routes all of 127.0.0.0/8 to lo), its exchanges checked
// against the OpenAPI document as http.DefaultClient's are.
type peer struct {
	addr string
	c    *http.Client
}

func newPeer(t *testing.T) peer {
	n := lastAddress.Add(1)
	addr := netip.AddrFrom4([4]byte{127, 0, byte(n>>8) + 1, byte(n)}).String()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(addr)}}
	rt, err := openapitest.NewTransport(httpapi.OpenAPI, &http.Transport{DialContext: dialer.DialContext})
	require.NoError(t, err)
	return peer{addr: addr, c: &http.Client{Transport: rt}}
}

func (p peer) call(t *testing.T, method, url string, header map[string]string, body string) answer {
	t.Helper()
	return callWith(t, p.c, method, url, header, body)
}

// getFeed reads subscriber's feed with token from p.
func (p peer) getFeed(t *testing.T, api *limitedAPI, subscriber, token string, more map[string]string) answer {
	t.Helper()
	return p.call(t, "GET", api.URL+"/v1/subscribers/"+subscriber+"/feed", bearer(token, more), "")
}

func mustLimit(t *testing.T, s string) ratelimit.Limit {
	t.Helper()
	l, err := ratelimit.ParseLimit(s)
	require.NoError(t, err)
	return l
}

// assertRefused checks a 429 as a client sees it: problem details naming
// whose budget is spent, and Retry-After in whole seconds, at least 1 and
// at most max.
func assertRefused(t *testing.T, a answer, whose string, maxWait time.Duration) {
	t.Helper()
	require.Equal(t, http.StatusTooManyRequests, a.code, a.body)
	assert.Contains(t, a.body["detail"], whose)
	secs, err := strconv.Atoi(a.header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", a.header.Get("Retry-After"))
	assert.GreaterOrEqual(t, secs, 1)
	assert.LessOrEqual(t, secs, int(maxWait.Seconds()))
}

// A client over its address's budget gets 429 with Retry-After, while
// another address is still served. The budget is charged before the token
// is checked, so forged tokens spend it too; the app's own token (its
// backend, serving many people from one address) is not limited.
func TestFeedRequestsAreLimitedPerAddress(t *testing.T) {
	api := newLimitedAPI(t, servers.Redis.Client(t), httpapi.Limits{FeedPerAddress: mustLimit(t, "3/1m")})
	tok := api.token(t, "acme", "addr-1")
	one, two, forger := newPeer(t), newPeer(t), newPeer(t)
	for i := range 3 {
		got := one.getFeed(t, api, "addr-1", tok, nil)
		require.Equal(t, http.StatusOK, got.code, "request %d: %v", i+1, got.body)
	}
	refused := one.getFeed(t, api, "addr-1", tok, nil)
	assertRefused(t, refused, "from this address", 20*time.Second)
	assert.Equal(t, "no-store", refused.header.Get("Cache-Control"))
	one.c.Timeout = 5 * time.Second // a stream that opened would fail the call
	stream := one.call(t, "GET", api.URL+"/v1/subscribers/addr-1/feed/stream?access_token="+tok, nil, "")
	assertRefused(t, stream, "from this address", 20*time.Second)
	for _, route := range []struct{ method, path string }{{"POST", "/feed/read-all"}, {"POST", "/feed/1/read"}} {
		got := one.call(t, route.method, api.URL+"/v1/subscribers/addr-1"+route.path, bearer(tok, nil), "")
		assertRefused(t, got, "from this address", 20*time.Second)
	}
	fromBrowser := one.getFeed(t, api, "addr-1", tok, map[string]string{"Origin": appOrigin})
	require.Equal(t, http.StatusTooManyRequests, fromBrowser.code)
	assert.Equal(t, "Retry-After", fromBrowser.header.Get("Access-Control-Expose-Headers"), "a page's script may read when to retry")

	assert.Equal(t, http.StatusOK, two.getFeed(t, api, "addr-1", tok, nil).code, "another address has a budget of its own")
	for range 5 {
		assert.Equal(t, http.StatusOK, one.getFeed(t, api, "addr-1", acmeToken, nil).code, "the app's token is not limited")
	}

	for range 3 {
		assert.Equal(t, http.StatusUnauthorized, forger.getFeed(t, api, "addr-1", tok[:len(tok)-2]+"xx", nil).code)
	}
	assertRefused(t, forger.getFeed(t, api, "addr-1", tok, nil), "from this address", 20*time.Second)
}

// A subscriber's token used from many addresses, each under its own
// budget, is refused once the subscriber's budget is spent. Only a valid
// token for the subscriber spends it, and the same subscriber id in
// another tenant has a budget of its own.
func TestAFloodOverManyAddressesIsLimitedPerSubscriber(t *testing.T) {
	api := newLimitedAPI(t, servers.Redis.Client(t), httpapi.Limits{FeedPerAddress: mustLimit(t, "2/1m"), FeedPerSubscriber: mustLimit(t, "3/1m")})
	tok := api.token(t, "acme", "flooded")
	for range 4 {
		p := newPeer(t)
		assert.Equal(t, http.StatusUnauthorized, p.getFeed(t, api, "flooded", tok[:len(tok)-2]+"xx", nil).code)
		assert.Equal(t, http.StatusForbidden, p.getFeed(t, api, "flooded", api.token(t, "acme", "someone-else"), nil).code)
	}
	for i := range 3 {
		got := newPeer(t).getFeed(t, api, "flooded", tok, nil)
		require.Equal(t, http.StatusOK, got.code, "request %d: forged and others' tokens spent nothing: %v", i+1, got.body)
	}
	for range 3 {
		assertRefused(t, newPeer(t).getFeed(t, api, "flooded", tok, nil), "for this subscriber", 20*time.Second)
	}
	assert.Equal(t, http.StatusOK, newPeer(t).getFeed(t, api, "flooded", api.token(t, "globex", "flooded"), nil).code,
		"globex's subscriber of the same id has its own budget")
	assert.Equal(t, http.StatusOK, newPeer(t).getFeed(t, api, "flooded-2", api.token(t, "acme", "flooded-2"), nil).code,
		"another subscriber has its own budget")
}

// A refused stream opens nothing: no subscription to the feed's channel.
func TestARefusedStreamIsNotOpened(t *testing.T) {
	api := newLimitedAPI(t, servers.Redis.Client(t), httpapi.Limits{FeedPerSubscriber: mustLimit(t, "2/1m")})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	tok := api.token(t, "acme", "streamer")
	url := api.URL + "/v1/subscribers/streamer/feed/stream?access_token=" + tok
	for range 2 {
		_, code := openStream(t, ctx, url, nil)
		require.Equal(t, http.StatusOK, code)
	}
	// A stream that opened would end the call only at the timeout, failing it.
	bounded := &http.Client{Timeout: 5 * time.Second, Transport: http.DefaultClient.Transport}
	assertRefused(t, callWith(t, bounded, "GET", url, nil, ""), "for this subscriber", 30*time.Second)
	rdb := servers.Redis.Client(t)
	subs, err := rdb.PubSubNumSub(ctx, feed.Channel("acme", "streamer")).Result()
	require.NoError(t, err)
	assert.EqualValues(t, 2, subs[feed.Channel("acme", "streamer")], "the two streams admitted, and no third")
}

// Two API processes on one Redis share each budget.
func TestAPIProcessesShareTheBudgets(t *testing.T) {
	lim := httpapi.Limits{FeedPerAddress: mustLimit(t, "4/1m")}
	first, second := newLimitedAPI(t, servers.Redis.Client(t), lim), newLimitedAPI(t, servers.Redis.Client(t), lim)
	tok := first.token(t, "acme", "shared")
	p := newPeer(t)
	for i := range 4 {
		api := []*limitedAPI{first, second}[i%2]
		require.Equal(t, http.StatusOK, p.getFeed(t, api, "shared", tok, nil).code, "request %d", i+1)
	}
	assertRefused(t, p.getFeed(t, first, "shared", tok, nil), "from this address", 15*time.Second)
	assertRefused(t, p.getFeed(t, second, "shared", tok, nil), "from this address", 15*time.Second)
}

// A refused client is served again once Retry-After has passed.
func TestALimitRecoversAfterRetryAfter(t *testing.T) {
	api := newLimitedAPI(t, servers.Redis.Client(t), httpapi.Limits{FeedPerAddress: mustLimit(t, "1/1s")})
	tok := api.token(t, "acme", "recovers")
	p := newPeer(t)
	require.Equal(t, http.StatusOK, p.getFeed(t, api, "recovers", tok, nil).code)
	refused := p.getFeed(t, api, "recovers", tok, nil)
	assertRefused(t, refused, "from this address", time.Second)
	secs, _ := strconv.Atoi(refused.header.Get("Retry-After"))
	time.Sleep(time.Duration(secs) * time.Second)
	assert.Equal(t, http.StatusOK, p.getFeed(t, api, "recovers", tok, nil).code)
}

// X-Forwarded-For is ignored from a peer that is not a trusted proxy: a
// client cannot pick its own address. From a trusted proxy, the nearest
// address that is not a trusted proxy's counts, and what the client wrote
// before it does not; an IPv6 client counts as its /64.
func TestClientAddressBehindProxies(t *testing.T) {
	rdb := servers.Redis.Client(t)
	client, proxy := newPeer(t), newPeer(t)
	lim := httpapi.Limits{FeedPerAddress: mustLimit(t, "2/1m"), ProxyHeader: "X-Forwarded-For",
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix(proxy.addr + "/32"), netip.MustParsePrefix("10.0.0.0/8")}}
	api := newLimitedAPI(t, rdb, lim)
	tok := api.token(t, "acme", "proxied")
	xff := func(v string) map[string]string { return map[string]string{"X-Forwarded-For": v} }

	for i := range 2 {
		require.Equal(t, http.StatusOK, client.getFeed(t, api, "proxied", tok, xff(fmt.Sprintf("198.51.100.%d", i))).code)
	}
	assertRefused(t, client.getFeed(t, api, "proxied", tok, xff("198.51.100.9")), "from this address", 30*time.Second)

	for _, v := range []string{"203.0.113.1", "192.0.2.66, 203.0.113.1, 10.1.2.3"} {
		require.Equal(t, http.StatusOK, proxy.getFeed(t, api, "proxied", tok, xff(v)).code, v)
	}
	for _, v := range []string{"203.0.113.1", "198.18.0.1, 203.0.113.1", "203.0.113.1:4711"} {
		assertRefused(t, proxy.getFeed(t, api, "proxied", tok, xff(v)), "from this address", 30*time.Second)
	}
	assert.Equal(t, http.StatusOK, proxy.getFeed(t, api, "proxied", tok, xff("203.0.113.2")).code, "another client behind the proxy")

	for _, v := range []string{"2001:db8:1:2::1", "2001:db8:1:2:aaaa::1"} {
		require.Equal(t, http.StatusOK, proxy.getFeed(t, api, "proxied", tok, xff(v)).code, v)
	}
	assertRefused(t, proxy.getFeed(t, api, "proxied", tok, xff("2001:db8:1:2:ffff::1")), "from this address", 30*time.Second)
	assert.Equal(t, http.StatusOK, proxy.getFeed(t, api, "proxied", tok, xff("2001:db8:1:3::1")).code, "another /64")

	lim.ProxyHeader = "Forwarded"
	rfc := newLimitedAPI(t, rdb, lim)
	fwd := func(v string) map[string]string {
		return map[string]string{"Forwarded": v, "X-Forwarded-For": "203.0.113.99"}
	}
	for range 2 {
		require.Equal(t, http.StatusOK, proxy.getFeed(t, rfc, "proxied", tok, fwd(`for="[2001:db8:cafe::17]:4711";proto=https`)).code)
	}
	// X-Forwarded-For's 203.0.113.99 has spent nothing: only the
	// configured header is read.
	assertRefused(t, proxy.getFeed(t, rfc, "proxied", tok, fwd(`for=192.0.2.60, for="[2001:db8:cafe::99]"`)), "from this address", 30*time.Second)
	assert.Equal(t, http.StatusOK, proxy.getFeed(t, rfc, "proxied", tok, fwd("for=203.0.113.99")).code, "another client")
}

// A refused unsubscribe records nothing, whichever budget refused it. The
// page and the one-click POST have budgets of their own, so that mail
// scanners fetching a link cannot spend the POST's; a browser that asks
// for HTML is told on a page.
func TestARefusedUnsubscribeRecordsNothing(t *testing.T) {
	api := newLimitedAPI(t, servers.Redis.Client(t), httpapi.Limits{UnsubscribePerAddress: mustLimit(t, "3/1m"), UnsubscribePerSubscriber: mustLimit(t, "1/1m")})
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	optOuts := func(subscriber string) []preferences.OptOut {
		p, err := api.prefs.ForTenant("acme").Get(context.Background(), subscriber)
		require.NoError(t, err)
		return p.OptOuts
	}
	scanner, person := newPeer(t), newPeer(t)
	for range 3 {
		scanner.call(t, "GET", api.link(t, "reader", "marketing"), nil, "")
	}
	page := scanner.call(t, "GET", api.link(t, "reader", "marketing"), map[string]string{"Accept": "text/html,application/xhtml+xml"}, "")
	require.Equal(t, http.StatusTooManyRequests, page.code)
	assert.Equal(t, "text/html; charset=utf-8", page.header.Get("Content-Type"))
	assert.NotEmpty(t, page.header.Get("Retry-After"))

	require.Equal(t, http.StatusOK, person.call(t, "POST", api.link(t, "reader", "marketing"), form, "List-Unsubscribe=One-Click").code,
		"the page's budgets are not the POST's")
	assert.Equal(t, []preferences.OptOut{{Category: "marketing", Channel: "email"}}, optOuts("reader"))

	refused := person.call(t, "POST", api.link(t, "reader", "news"), form, "List-Unsubscribe=One-Click")
	assertRefused(t, refused, "for this subscriber", time.Minute)
	assert.Equal(t, []preferences.OptOut{{Category: "marketing", Channel: "email"}}, optOuts("reader"), "the refused link's opt-out was not added")

	// The address has spent two of its three: the refused POST had passed
	// the address's budget before the subscriber's refused it.
	require.Equal(t, http.StatusOK, person.call(t, "POST", api.link(t, "reader-2", "news"), form, "List-Unsubscribe=One-Click").code)
	assertRefused(t, person.call(t, "POST", api.link(t, "reader-3", "news"), form, "List-Unsubscribe=One-Click"), "from this address", 20*time.Second)
	assert.Empty(t, optOuts("reader-3"), "refused per address: nothing recorded")

	for range 3 {
		assert.Equal(t, http.StatusBadRequest, newPeer(t).call(t, "POST", api.link(t, "reader-5", "news")+"x", form, "List-Unsubscribe=One-Click").code)
	}
	require.Equal(t, http.StatusOK, newPeer(t).call(t, "POST", api.link(t, "reader-5", "news"), form, "List-Unsubscribe=One-Click").code,
		"invalid links spend no subscriber's budget")
}

// When the budgets' Redis cannot be reached, requests are served (fail
// open): what they need Redis for fails on its own, and the unsubscribe
// page, which needs none, still shows what a link does.
func TestLimitsFailOpen(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	gone := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() { _ = gone.Close() })
	api := newLimitedAPI(t, gone, httpapi.Limits{FeedPerAddress: mustLimit(t, "1/1m"), UnsubscribePerAddress: mustLimit(t, "1/1m")})
	p := newPeer(t)
	tok := api.token(t, "acme", "open")
	for range 2 {
		assert.Equal(t, http.StatusOK, p.getFeed(t, api, "open", tok, nil).code)
		assert.Equal(t, http.StatusOK, p.call(t, "GET", api.link(t, "open", "news"), nil, "").code)
	}
}

// The limits read from the environment: generous defaults, off, and bad
// values named.
func TestLoadLimits(t *testing.T) {
	l, err := httpapi.LoadLimits(env(nil))
	require.NoError(t, err)
	assert.Equal(t, "1200/1m0s", l.FeedPerAddress.String())
	assert.Equal(t, "120/1m0s", l.FeedPerSubscriber.String())
	assert.Equal(t, "600/1m0s", l.UnsubscribePerAddress.String())
	assert.Equal(t, "30/1m0s", l.UnsubscribePerSubscriber.String())
	assert.Empty(t, l.TrustedProxies, "no proxy is trusted by default")
	assert.Equal(t, "X-Forwarded-For", l.ProxyHeader)

	l, err = httpapi.LoadLimits(env(map[string]string{"ONCEFLOW_FEED_LIMIT_PER_ADDRESS": "off", "ONCEFLOW_FEED_LIMIT_PER_SUBSCRIBER": "10/s,burst=50",
		"ONCEFLOW_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7", "ONCEFLOW_PROXY_HEADER": "forwarded"}))
	require.NoError(t, err)
	assert.True(t, l.FeedPerAddress.Off())
	assert.Equal(t, ratelimit.Limit{Burst: 50, Interval: 100 * time.Millisecond}, l.FeedPerSubscriber)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}, l.TrustedProxies)
	assert.Equal(t, "Forwarded", l.ProxyHeader)

	for name, value := range map[string]string{
		"ONCEFLOW_FEED_LIMIT_PER_ADDRESS":           "lots",
		"ONCEFLOW_FEED_LIMIT_PER_SUBSCRIBER":        "0/1m",
		"ONCEFLOW_UNSUBSCRIBE_LIMIT_PER_ADDRESS":    "10/1m,burst=0",
		"ONCEFLOW_UNSUBSCRIBE_LIMIT_PER_SUBSCRIBER": "10",
		"ONCEFLOW_TRUSTED_PROXIES":                  "10.0.0.0/33",
		"ONCEFLOW_PROXY_HEADER":                     "X-Real-IP",
	} {
		_, err := httpapi.LoadLimits(env(map[string]string{name: value}))
		assert.ErrorContains(t, err, name, value)
		if assert.Error(t, err) {
			assert.True(t, strings.Contains(err.Error(), value), "%v names the value", err)
		}
	}
}
