package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/codec"
	"github.com/onceflow/onceflow/feed"
)

// EnvFeedOrigins names the variable listing the origins (scheme, host and
// port, comma-separated) whose pages may read feeds from the browser.
const EnvFeedOrigins = "ONCEFLOW_FEED_ORIGINS"

// ParseOrigins splits EnvFeedOrigins's comma-separated list.
func ParseOrigins(s string) []string { return codec.ParseOrigins(s) }

// Stream bounds. A stream ends when its subscriber token expires, or after
// maxStream with an app's token, and the browser's EventSource reconnects
// with Last-Event-ID (after fetching a new token, for an expired one).
const (
	maxStream     = time.Hour
	keepAlive     = 25 * time.Second
	streamBacklog = feed.MaxLimit
)

// feedAPI is what the feed routes need.
type feedAPI struct {
	service *feed.Service
	signer  *feed.Signer
	origins []string
}

// WithFeed serves the in-app feed routes from s. signer, when not nil,
// mints subscriber tokens (POST /v1/subscribers/{id}/tokens) and accepts
// them on the feed routes; origins lists the pages that may call the feed
// routes from a browser (CORS).
func WithFeed(s *feed.Service, signer *feed.Signer, origins []string) Option {
	return func(h *api) { h.feed = &feedAPI{service: s, signer: signer, origins: origins} }
}

// The feed routes, added to Handler's mux:
//
//	POST /v1/subscribers/{id}/tokens            mint a subscriber token (app token only)
//	GET  /v1/subscribers/{id}/feed              a page, newest first (?cursor=&limit=), unread count
//	POST /v1/subscribers/{id}/feed/{item}/read  mark one item read
//	POST /v1/subscribers/{id}/feed/read-all     mark every item read
//	GET  /v1/subscribers/{id}/feed/stream       new items as Server-Sent Events
//
// The app's bearer tokens reach every subscriber of their tenant. A
// subscriber token (feed.Signer) reaches the feed routes of its one
// subscriber, in the Authorization header, or, on the stream route only,
// as the access_token query parameter: a browser's EventSource cannot set
// headers. A query parameter rather than a cookie: a cookie is sent by
// the browser on its own, so the POST routes would need CSRF defences, and
// the app's pages and the API are usually on different sites, where
// browsers block third-party cookies. The token in the URL is short-lived,
// can only read one feed, and the API logs no query strings; responses say
// Referrer-Policy: no-referrer so that it does not leak onward.
func (h *api) feedRoutes(mux *http.ServeMux) {
	mux.Handle("POST /v1/subscribers/{id}/tokens", h.authorized(h.mintSubscriberToken))
	mux.Handle("GET /v1/subscribers/{id}/feed", h.feedAccess(false, h.getFeed))
	mux.Handle("POST /v1/subscribers/{id}/feed/{item}/read", h.feedAccess(false, h.readItem))
	mux.Handle("POST /v1/subscribers/{id}/feed/read-all", h.feedAccess(false, h.readAll))
	mux.Handle("GET /v1/subscribers/{id}/feed/stream", h.feedAccess(true, h.stream))
	mux.HandleFunc("OPTIONS /v1/subscribers/{id}/feed", h.preflight)
	mux.HandleFunc("OPTIONS /v1/subscribers/{id}/feed/{rest...}", h.preflight)
}

// reader is who may read a feed: a tenant, and until when (zero for an
// app's token, which does not expire).
type reader struct {
	tenant  string
	expires time.Time
	// token is the subscriber token's claims; zero for an app's token.
	token feed.Claims
}

type feedHandler func(w http.ResponseWriter, r *http.Request, who reader, subscriber string)

// feedAccess serves f to a request that may read the path's subscriber's
// feed: one with the app's bearer token (or any, when the API has no
// tokens), or with a subscriber token for that subscriber.
func (h *api) feedAccess(queryToken bool, f feedHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.cors(w, r) {
			return
		}
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Cache-Control", "no-store")
		if h.feed == nil {
			writeProblem(w, http.StatusServiceUnavailable, Problem{Detail: "the in-app feed is kept in Redis, and this API has none: set REDIS_URL"})
			return
		}
		subscriber := r.PathValue("id")
		if err := onceflow.ValidateSubscriber(subscriber); err != nil {
			writeValidation(w, err)
			return
		}
		bearer, refused := bearerToken(r.Header.Values("Authorization"))
		if q, ok := r.URL.Query()["access_token"]; ok {
			switch {
			case !queryToken:
				writeProblem(w, http.StatusBadRequest, Problem{Detail: "access_token is accepted on the stream route only; send Authorization: Bearer <token>", Field: "access_token"})
				return
			case refused == nil || len(q) != 1:
				writeProblem(w, http.StatusBadRequest, Problem{Detail: "give one token: one access_token parameter or the Authorization header", Field: "access_token"})
				return
			case !strings.HasPrefix(q[0], feed.TokenPrefix):
				// Only a short-lived subscriber token may travel in a URL,
				// where proxies, browser history and access logs keep it;
				// the app's API token is long-lived and tenant-wide.
				writeProblem(w, http.StatusBadRequest, Problem{Detail: "access_token takes a subscriber token (" + feed.TokenPrefix + "...) only; send the app's API token in the Authorization header", Field: "access_token"})
				return
			}
			bearer, refused = q[0], nil
		}
		// A subscriber token is a browser's: limited per address before
		// it is checked, and per subscriber once it has been (limits.go).
		// The app's token is its backend's, which serves many people
		// from few addresses.
		subscriberToken := refused == nil && strings.HasPrefix(bearer, feed.TokenPrefix)
		if subscriberToken && !h.admitAddress(w, r, feedRoutes) {
			return
		}
		who, ok := h.feedReader(r.Context(), w, bearer, refused, subscriber)
		if !ok || subscriberToken && !h.admitSubscriber(w, r, feedRoutes, who.tenant, subscriber) {
			return
		}
		f(w, r, who, subscriber)
	})
}

// feedReader authenticates a feed request; on failure it has answered.
func (h *api) feedReader(ctx context.Context, w http.ResponseWriter, bearer string, refused *authError, subscriber string) (reader, bool) {
	invalid := func(msg string) (reader, bool) {
		unauthorized(w, "invalid_token", msg)
		return reader{}, false
	}
	switch {
	case refused != nil && refused.code != "":
		unauthorized(w, refused.code, "the Authorization header "+refused.description)
		return reader{}, false
	case refused != nil && h.tokens == nil:
		return reader{}, true // an API without tokens serves everyone as tenant ""
	case refused != nil:
		unauthorized(w, "", "a bearer token is required: the app's API token or a subscriber token")
		return reader{}, false
	case strings.HasPrefix(bearer, feed.TokenPrefix):
		if h.feed.signer == nil {
			return invalid("subscriber tokens are not enabled on this API (" + feed.EnvTokenSecret + ")")
		}
		c, err := h.feed.service.Verify(ctx, h.feed.signer, bearer, time.Now())
		if errors.Is(err, feed.ErrToken) {
			return invalid(err.Error())
		}
		if err != nil {
			h.log.Error("Subscriber token not checked: its subscriber's revocation could not be read", "error", err)
			writeProblem(w, http.StatusServiceUnavailable, Problem{Detail: "the subscriber token could not be checked; retry"})
			return reader{}, false
		}
		if c.Subscriber != subscriber {
			writeProblem(w, http.StatusForbidden, Problem{Detail: "the subscriber token is for another subscriber", Field: "Authorization"})
			return reader{}, false
		}
		return reader{tenant: c.Tenant, expires: c.Expires, token: c}, true
	case h.tokens == nil:
		return reader{}, true
	}
	tenant, ok := h.tokens.Tenant(bearer)
	if !ok {
		return invalid("the bearer token is not valid")
	}
	return reader{tenant: tenant}, true
}

// cors answers CORS for the feed routes: an allowed origin gets
// Access-Control-Allow-Origin (no credentials: tokens travel in headers or
// the stream's URL, never in cookies); another origin's request is refused
// with 403 before anything is read. It returns false when it has answered.
func (h *api) cors(w http.ResponseWriter, r *http.Request) bool {
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if h.feed == nil || !slices.Contains(h.feed.origins, origin) {
		writeProblem(w, http.StatusForbidden, Problem{Detail: "origin " + origin + " may not read feeds from a browser (allow it in " + EnvFeedOrigins + ")", Field: "Origin"})
		return false
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Set("Access-Control-Expose-Headers", "Retry-After")
	return true
}

func (h *api) preflight(w http.ResponseWriter, r *http.Request) {
	if !h.cors(w, r) {
		return
	}
	w.Header().Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID")
	w.Header().Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

func (h *api) getFeed(w http.ResponseWriter, r *http.Request, who reader, subscriber string) {
	cursor, limit, ok := pageQuery(w, r)
	if !ok {
		return
	}
	page, err := h.feed.service.ForTenant(who.tenant).Page(r.Context(), subscriber, cursor, limit)
	if errors.Is(err, feed.ErrCursor) {
		writeProblem(w, http.StatusBadRequest, Problem{Detail: err.Error(), Field: "cursor"})
		return
	}
	if err != nil {
		h.feedFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (h *api) readItem(w http.ResponseWriter, r *http.Request, who reader, subscriber string) {
	item := r.PathValue("item")
	err := h.feed.service.ForTenant(who.tenant).MarkRead(r.Context(), subscriber, item)
	if errors.Is(err, feed.ErrNoItem) {
		writeProblem(w, http.StatusNotFound, Problem{Detail: fmt.Sprintf("the feed has no item %q (never written, or expired)", item)})
		return
	}
	if err != nil {
		h.feedFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": item, "read": true})
}

func (h *api) readAll(w http.ResponseWriter, r *http.Request, who reader, subscriber string) {
	n, err := h.feed.service.ForTenant(who.tenant).MarkAllRead(r.Context(), subscriber)
	if err != nil {
		h.feedFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"marked": n})
}

// SubscriberToken is the answer to POST /v1/subscribers/{id}/tokens.
type SubscriberToken struct {
	Token      string    `json:"token"`
	Subscriber string    `json:"subscriber"`
	ExpiresAt  time.Time `json:"expires_at"`
}

func (h *api) mintSubscriberToken(w http.ResponseWriter, r *http.Request) {
	subscriber := r.PathValue("id")
	if err := onceflow.ValidateSubscriber(subscriber); err != nil {
		writeValidation(w, err)
		return
	}
	if h.feed == nil || h.feed.signer == nil {
		writeProblem(w, http.StatusNotImplemented, Problem{Detail: "subscriber tokens are not enabled on this API: set " + feed.EnvTokenSecret + " (and REDIS_URL)"})
		return
	}
	var body struct {
		TTL string `json:"ttl"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		writeProblem(w, http.StatusBadRequest, Problem{Detail: "the body must be {} or {\"ttl\": \"15m\"}: " + err.Error()})
		return
	}
	var ttl time.Duration
	if body.TTL != "" {
		d, err := time.ParseDuration(body.TTL)
		if err != nil {
			writeProblem(w, http.StatusBadRequest, Problem{Detail: fmt.Sprintf("ttl %q is not a duration such as 15m", body.TTL), Field: "ttl"})
			return
		}
		ttl = d
	}
	tok, exp, err := h.feed.signer.Mint(tenantOf(r.Context()), subscriber, ttl, time.Now())
	if err != nil {
		writeValidation(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, SubscriberToken{Token: tok, Subscriber: subscriber, ExpiresAt: exp.UTC()})
}

// stream serves the feed's new items as Server-Sent Events: each is an
// "item" event whose id is the item's cursor and whose data is the item's
// JSON. A client that resumes sends the last id it saw as Last-Event-ID
// (EventSource does so itself) or, on its first connection, the newest
// cursor of the page it has shown as ?after=; it first gets what it missed
// (up to a page of feed.MaxLimit, oldest first), then new items as they
// are written, each once. A stream ends when its subscriber token expires
// or is revoked (checked at each keep-alive).
func (h *api) stream(w http.ResponseWriter, r *http.Request, who reader, subscriber string) {
	after := r.Header.Get("Last-Event-ID")
	if after == "" {
		after = r.URL.Query().Get("after")
	}
	ctx, cancel := context.WithTimeout(r.Context(), maxStream)
	defer cancel()
	if !who.expires.IsZero() {
		ctx, cancel = context.WithDeadline(ctx, who.expires)
		defer cancel()
	}
	// Subscribe first, so that nothing written after the backlog was read
	// is missed; what both deliver is sent once, by cursor.
	live, err := h.feed.service.ForTenant(who.tenant).Subscribe(ctx, subscriber)
	if err != nil {
		h.feedFailed(w, r, err)
		return
	}
	defer func() { _ = live.Close() }()
	var backlog []feed.Item
	if after != "" {
		backlog, err = h.feed.service.ForTenant(who.tenant).After(ctx, subscriber, after, streamBacklog)
		if errors.Is(err, feed.ErrCursor) {
			writeProblem(w, http.StatusBadRequest, Problem{Detail: err.Error(), Field: "Last-Event-ID"})
			return
		}
		if err != nil {
			h.feedFailed(w, r, err)
			return
		}
	}
	rc := http.NewResponseController(w)
	// The server's read and write timeouts bound ordinary requests; a
	// stream lasts until ctx ends.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	last, _ := strconv.ParseUint(after, 10, 64)
	send := func(it feed.Item) error {
		if c, _ := strconv.ParseUint(it.Cursor, 10, 64); c <= last {
			return nil
		}
		data, err := json.Marshal(it)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "id: %s\nevent: item\ndata: %s\n\n", it.Cursor, data); err != nil {
			return err
		}
		last, _ = strconv.ParseUint(it.Cursor, 10, 64)
		return rc.Flush()
	}
	if _, err := io.WriteString(w, "retry: 3000\n\n"); err != nil {
		return
	}
	for _, it := range backlog {
		if send(it) != nil {
			return
		}
	}
	if rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case it, ok := <-live.C:
			if !ok || send(it) != nil {
				return
			}
		case <-tick.C:
			// A subscriber token revoked while its stream is open ends it
			// within a keep-alive; so does a Redis that cannot say.
			if !who.token.Expires.IsZero() && h.feed.service.Recheck(ctx, who.token) != nil {
				return
			}
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

// feedFailed answers a failure of the feed's Redis: 503, detail in the log.
func (h *api) feedFailed(w http.ResponseWriter, r *http.Request, err error) {
	h.log.Error("Feed request failed", "method", r.Method, "route", r.Pattern, "error", err)
	writeProblem(w, http.StatusServiceUnavailable, Problem{Detail: "the feed could not be read or written; retry"})
}
