package httpapi

import (
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/envvar"
	"github.com/onceflow/onceflow/providers/egress"
	"github.com/onceflow/onceflow/ratelimit"
)

// Limits bound the routes a request reaches without the app's token: the
// feed routes called with a subscriber token (a browser's) and the
// unsubscribe page and one-click POST (a signed link). Each request is
// charged to its client address's budget, before its credential is
// checked, so that a flood of forged tokens or links is bounded too; then,
// once the credential has proved whose it is, to its subscriber's budget
// in its tenant, so that a leaked token or link used from many addresses
// is bounded as well, and nobody can spend a subscriber's budget without
// that subscriber's credential. A refused request gets 429 with
// Retry-After and does nothing else. The budgets live in Redis
// (ratelimit.Budgets), shared by every API process.
type Limits struct {
	// FeedPerAddress and FeedPerSubscriber bound the feed routes called
	// with a subscriber token, all four sharing one budget
	// (ONCEFLOW_FEED_LIMIT_PER_ADDRESS, ONCEFLOW_FEED_LIMIT_PER_SUBSCRIBER).
	FeedPerAddress, FeedPerSubscriber ratelimit.Limit
	// UnsubscribePerAddress and UnsubscribePerSubscriber bound the
	// unsubscribe page and the one-click POST, each with budgets of its
	// own, so that mail scanners fetching the page cannot spend the
	// POST's (ONCEFLOW_UNSUBSCRIBE_LIMIT_PER_ADDRESS,
	// ONCEFLOW_UNSUBSCRIBE_LIMIT_PER_SUBSCRIBER).
	UnsubscribePerAddress, UnsubscribePerSubscriber ratelimit.Limit
	// TrustedProxies are the networks whose ProxyHeader is believed
	// (ONCEFLOW_TRUSTED_PROXIES); none by default, since a header any
	// client can send would let each pick its own address.
	TrustedProxies []netip.Prefix
	// ProxyHeader is X-Forwarded-For or Forwarded (RFC 7239), the one
	// header the trusted proxies append the client's address to
	// (ONCEFLOW_PROXY_HEADER).
	ProxyHeader string
}

// LoadLimits reads the public routes' limits through getenv. A bad value
// is an error that names its variable.
func LoadLimits(getenv func(string) string) (Limits, error) {
	var l Limits
	for _, v := range []struct {
		to  *ratelimit.Limit
		env envvar.Var
	}{
		{&l.FeedPerAddress, envvar.FeedLimitPerAddress},
		{&l.FeedPerSubscriber, envvar.FeedLimitPerSubscriber},
		{&l.UnsubscribePerAddress, envvar.UnsubscribeLimitPerAddress},
		{&l.UnsubscribePerSubscriber, envvar.UnsubscribeLimitPerSubscriber},
	} {
		limit, err := ratelimit.ParseLimit(v.env.Get(getenv))
		if err != nil {
			return Limits{}, fmt.Errorf("%s: %w", v.env.Name, err)
		}
		*v.to = limit
	}
	var err error
	if l.TrustedProxies, err = egress.ParseAllow(getenv(envvar.TrustedProxies.Name)); err != nil {
		return Limits{}, fmt.Errorf("%s: %w", envvar.TrustedProxies.Name, err)
	}
	switch h := envvar.ProxyHeader.Get(getenv); {
	case strings.EqualFold(h, "X-Forwarded-For"):
		l.ProxyHeader = "X-Forwarded-For"
	case strings.EqualFold(h, "Forwarded"):
		l.ProxyHeader = "Forwarded"
	default:
		return Limits{}, fmt.Errorf("%s=%q is neither X-Forwarded-For nor Forwarded", envvar.ProxyHeader.Name, h)
	}
	return l, nil
}

// route is a group of routes limited with budgets of their own.
type route int

const (
	feedRoutes    route = iota // the feed routes, with a subscriber token
	pageRoute                  // GET /v1/unsubscribe/{token}
	oneClickRoute              // POST /v1/unsubscribe/{token}
)

// limiter is the budgets of WithLimits, per route: [0] per client
// address, [1] per subscriber.
type limiter struct {
	budgets [3][2]*ratelimit.Budgets
	proxies []netip.Prefix
	header  string
}

// WithLimits charges the public routes' requests to budgets of l kept in
// rdb (see Limits). Without it they are not limited.
//
// When Redis cannot be reached the request is served (fail open) and the
// failure logged: every route limited here but the unsubscribe page needs
// the same Redis for its own work, and answers 503 itself without it,
// while the page, which only checks the link's signature, keeps showing a
// person what their link does.
func WithLimits(rdb redis.Scripter, l Limits) Option {
	pair := func(name string, address, subscriber ratelimit.Limit) [2]*ratelimit.Budgets {
		return [2]*ratelimit.Budgets{ratelimit.NewBudgets(rdb, name+":address", address), ratelimit.NewBudgets(rdb, name+":subscriber", subscriber)}
	}
	return func(h *api) {
		h.limits = &limiter{
			budgets: [3][2]*ratelimit.Budgets{
				feedRoutes:    pair("feed", l.FeedPerAddress, l.FeedPerSubscriber),
				pageRoute:     pair("unsubscribe-page", l.UnsubscribePerAddress, l.UnsubscribePerSubscriber),
				oneClickRoute: pair("unsubscribe", l.UnsubscribePerAddress, l.UnsubscribePerSubscriber),
			},
			proxies: l.TrustedProxies,
			header:  l.ProxyHeader,
		}
	}
}

// admitAddress charges r to its client address's budget on route. When
// the budget is spent it answers 429 with Retry-After and returns false.
func (h *api) admitAddress(w http.ResponseWriter, r *http.Request, on route) bool {
	return h.limits == nil || h.admit(w, r, h.limits.budgets[on][0], h.limits.client(r), "from this address", on != feedRoutes)
}

// admitSubscriber charges r to the budget on route of tenant's
// subscriber, as admitAddress does.
func (h *api) admitSubscriber(w http.ResponseWriter, r *http.Request, on route, tenant, subscriber string) bool {
	return h.limits == nil || h.admit(w, r, h.limits.budgets[on][1], onceflow.ScopedKey(tenant, subscriber), "for this subscriber", on != feedRoutes)
}

// admit charges r to caller's budget in b; page says that a browser that
// asks for HTML gets a page rather than problem details.
func (h *api) admit(w http.ResponseWriter, r *http.Request, b *ratelimit.Budgets, caller, whose string, page bool) bool {
	wait, ok, err := b.Allow(r.Context(), caller)
	if err != nil {
		h.log.Error("Rate limit not checked; the request is served", "route", r.Pattern, "error", err)
		return true
	}
	if ok {
		return true
	}
	secs := max(1, int(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	if page && strings.Contains(r.Header.Get("Accept"), "text/html") {
		writePage(w, http.StatusTooManyRequests, unsubscribePage{Title: "Too many requests", Message: fmt.Sprintf("Too many requests came %s. Nothing was changed; please try again in %s.", whose, seconds(secs))})
		return false
	}
	writeProblem(w, http.StatusTooManyRequests, Problem{Detail: fmt.Sprintf("too many requests %s; retry after %s (Retry-After)", whose, seconds(secs))})
	return false
}

func seconds(n int) string {
	if n == 1 {
		return "1 second"
	}
	return strconv.Itoa(n) + " seconds"
}

// client is the address r's budget is kept under: the connection's peer,
// or, when that is a trusted proxy, the address the proxies' header says
// they received the request from; an IPv6 address counts as its /64.
func (l *limiter) client(r *http.Request) string {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	addr := peer.Addr().Unmap().WithZone("")
	if l.trusted(addr) {
		addr = l.forwarded(r, addr)
	}
	if addr.Is6() {
		// One host rotates through its /64 at will (privacy addresses);
		// a /64 is what one end site, or one phone, is given.
		return netip.PrefixFrom(addr, 64).Masked().String()
	}
	return addr.String()
}

func (l *limiter) trusted(a netip.Addr) bool {
	for _, p := range l.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwarded walks the proxy header from the nearest hop back, from peer,
// a trusted proxy: the first address that is not a trusted proxy's is the
// client's, written by a proxy that is trusted. Anything before it may
// have been sent by the client and is not read. An entry that is no
// address (unknown, obfuscated) stops the walk at the proxy that wrote it.
func (l *limiter) forwarded(r *http.Request, peer netip.Addr) netip.Addr {
	hops := forwardedFor(r.Header.Values(l.header), l.header == "Forwarded")
	addr := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			return addr
		}
		addr = a
		if !l.trusted(a) {
			return a
		}
	}
	return addr
}

// forwardedFor lists the hops of X-Forwarded-For's values, or the for=
// parameters of Forwarded's, in order, every header line included.
func forwardedFor(values []string, rfc7239 bool) []string {
	var hops []string
	for _, v := range values {
		for _, elem := range strings.Split(v, ",") {
			if !rfc7239 {
				hops = append(hops, strings.TrimSpace(elem))
				continue
			}
			hop := ""
			for _, pair := range strings.Split(elem, ";") {
				if k, v, _ := strings.Cut(strings.TrimSpace(pair), "="); strings.EqualFold(k, "for") {
					hop = strings.Trim(v, `"`)
				}
			}
			hops = append(hops, hop)
		}
	}
	return hops
}

// parseHop reads one hop: an address, an address with a port, and IPv6
// in brackets with or without one.
func parseHop(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}
