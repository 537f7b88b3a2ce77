package providers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/onceflow/onceflow/providers/egress"
)

// NewHTTPClient returns a client for providers' HTTP APIs: a timeout as a
// last resort (the caller's context is the real deadline), no redirects,
// since a redirected POST would be re-sent as a GET, and connections that
// report their write failures to DoHTTP (see wire). It is for endpoints an
// operator configures; destinations that callers supply go through
// NewGuardedHTTPClient.
func NewHTTPClient() *http.Client {
	d := dialer()
	return newHTTPClient(http.ProxyFromEnvironment, d.DialContext)
}

// NewGuardedHTTPClient returns NewHTTPClient's client for destinations
// that callers supply (webhook URLs): every address it connects to, after
// name resolution, must pass g, and a dial g refuses makes DoHTTP return a
// permanent error that sent nothing. It never uses a proxy (HTTP_PROXY
// and the like are ignored): through a proxy, g would judge the proxy's
// address and not the destination's.
func NewGuardedHTTPClient(g egress.Guard) *http.Client {
	return newHTTPClient(nil, g.DialContext(dialer()))
}

func dialer() *net.Dialer {
	return &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
}

func newHTTPClient(proxy func(*http.Request) (*url.URL, error), dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	return &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		// http.DefaultTransport's settings, with the dialer wrapped.
		Transport: &http.Transport{
			Proxy:                 proxy,
			DialContext:           wireDialer(dial),
			ForceAttemptHTTP2:     true,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
			// A broadcast sends up to 128 requests at once per worker (4
			// chunks of 32), often to one host. With net/http's default of
			// 2 idle connections per host, two in three of its requests
			// opened a new connection: 6,700 sockets in TIME_WAIT after
			// 10,000 deliveries, enough at 100,000 to run out of ephemeral
			// ports towards a remote host (docs/benchmarks.md).
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 128,
		},
	}
}

// API is the HTTP API a provider calls through DoHTTP.
type API struct {
	// Name starts every error: "sms", "chat".
	Name string
	// Receiver says what the API does with a repeated request, which
	// decides whether a 5xx answer may have been performed.
	Receiver Receiver
	// Detail, when set, reads the API's error body into words for the
	// error message; DoHTTP keeps a short, sanitized Excerpt of them.
	Detail func(body []byte) string
	// MaxBody is the most of a response body that is read; 0 means
	// DefaultMaxBody. Destinations that callers supply get a few KiB
	// (CallerMaxBody): nothing of theirs is needed but an error's gist.
	MaxBody int64
	// TraceContext sends the W3C traceparent header of the request's
	// span, so that a receiver can continue the trace: for receivers that
	// Onceflow's users run (webhooks), not third parties' APIs.
	TraceContext bool
}

// Response body limits (API.MaxBody).
const (
	DefaultMaxBody = 1 << 20
	CallerMaxBody  = 4 << 10
)

// Response is a provider's 2xx answer.
type Response struct {
	Status int
	Header http.Header
	// Body is at most API.MaxBody bytes of the body.
	Body []byte
}

// DoHTTP sends req to api and returns the response when the status is 2xx.
// Any other outcome is a classified *Error. A transport failure is
// MaybeSent when some attempt that net/http made wrote the whole request,
// body included, and not sent when none did (refused, DNS, TLS, a reset
// before the body went out); a status is classified by ClassifyHTTPStatus
// for api.Receiver, its message completed by an Excerpt of api.Detail. A
// dial that an egress.Guard refused is permanent and not sent. Request
// URLs, which may carry credentials, are kept out of errors.
//
// Each call is a client span when tracing is on (trace.go).
func DoHTTP(c *http.Client, req *http.Request, api API) (Response, error) {
	req, end := startSpan(req, api)
	resp, err := doHTTP(c, req, api)
	end(resp, err)
	return resp, err
}

func doHTTP(c *http.Client, req *http.Request, api API) (Response, error) {
	w := &wire{}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), w.trace()))
	resp, err := c.Do(req)
	if err != nil {
		var refused *egress.RefusedError
		if errors.As(err, &refused) {
			return Response{}, &Error{Permanent: true, Err: fmt.Errorf("%s: %w", api.Name, refused)}
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("%s: %w", ue.Op, ue.Err)
		}
		err = fmt.Errorf("%s: %w", api.Name, err)
		traced, written := w.result()
		if !traced {
			// A transport that does not report its attempts: judge by
			// the error alone.
			return Response{}, ClassifyTransport(err)
		}
		if !written {
			err = fmt.Errorf("%w (the request was not fully written)", err)
		}
		return Response{}, &Error{MaybeSent: written, Err: err}
	}
	defer func() { _ = resp.Body.Close() }()
	// A body cut short does not change what the status said.
	limit := api.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, limit))
	out := Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	if err := ClassifyHTTPStatus(resp.StatusCode, resp.Header, time.Now(), api.Receiver); err != nil {
		pe := err.(*Error)
		msg := pe.Err.Error()
		if api.Detail != nil {
			if d := Excerpt(api.Detail(body)); d != "" {
				msg += ": " + d
			}
		}
		pe.Err = fmt.Errorf("%s: %s", api.Name, msg)
		return out, pe
	}
	return out, nil
}

// MaxExcerpt bounds an Excerpt, in bytes.
const MaxExcerpt = 200

// Excerpt makes text from a response body fit for an error reason: control
// and formatting characters (escape sequences, bidirectional overrides)
// and invalid UTF-8 are dropped, runs of white space become one space, and
// what is left is cut to MaxExcerpt bytes, marked with "…" when cut.
// Reasons are shown and logged; a body is the receiver's to fill.
func Excerpt(s string) string {
	out := sanitize(s)
	if len(out) <= MaxExcerpt {
		return out
	}
	cut := MaxExcerpt - len("…")
	for !utf8.RuneStart(out[cut]) {
		cut--
	}
	return out[:cut] + "…"
}

// sanitize is Excerpt without the cut.
func sanitize(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
		case r == utf8.RuneError, unicode.IsControl(r), unicode.Is(unicode.Cf, r):
		default:
			if space {
				b.WriteByte(' ')
				space = false
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// wire follows one request through net/http's attempts (it re-tries on a
// fresh connection by itself when a kept-alive one fails before anything
// was written, and HTTP/2 when the server refused a stream) and says
// whether any of them wrote the whole request.
//
// httptrace's WroteRequest alone does not say that over HTTP/1.1: net/http
// reports it once the request is in the connection's buffer and flushes
// the buffer afterwards, so a small request can be reported written and
// then fail to leave. The connections that NewHTTPClient dials count their
// failed writes; an HTTP/1.1 attempt counts as written only if its
// connection had no failed write since the attempt got it. (HTTP/2 reports
// WroteRequest after flushing, and shares a connection among requests, so
// there WroteRequest alone decides.)
type wire struct {
	mu sync.Mutex
	// traced: the transport reported getting a connection, so its trace
	// is to be believed.
	traced bool
	// written: an earlier attempt wrote the whole request.
	written bool
	// The current attempt: its reported write, its connection (nil when
	// WroteRequest alone decides) and that connection's failed writes
	// when the attempt got it.
	wrote  bool
	conn   *wireConn
	failed int64
}

func (w *wire) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GetConn: func(string) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.traced = true
			w.next(nil)
		},
		GotConn: func(info httptrace.GotConnInfo) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.traced = true
			w.next(info.Conn)
		},
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.wrote = info.Err == nil
		},
	}
}

// next ends the current attempt and starts one on conn.
func (w *wire) next(conn net.Conn) {
	w.settle()
	w.wrote, w.conn, w.failed = false, nil, 0
	if tc, ok := conn.(*tls.Conn); ok {
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			return
		}
		conn = tc.NetConn()
	}
	if wc, ok := conn.(*wireConn); ok {
		w.conn, w.failed = wc, wc.failed.Load()
	}
}

// settle folds the current attempt into written.
func (w *wire) settle() {
	if w.wrote && (w.conn == nil || w.conn.failed.Load() == w.failed) {
		w.written = true
	}
}

// result says whether the trace was reported and whether any attempt wrote
// the whole request. Call it once the request is over: net/http returns a
// failed request only after its writer has stopped.
func (w *wire) result() (traced, written bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.settle()
	return w.traced, w.written
}

// wireConn is a connection that counts its failed writes.
type wireConn struct {
	net.Conn
	failed atomic.Int64
}

func (c *wireConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil {
		c.failed.Add(1)
	}
	return n, err
}

func wireDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &wireConn{Conn: c}, nil
	}
}
