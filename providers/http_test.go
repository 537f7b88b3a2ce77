package providers

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/providers/egress"
)

// brokenWrites is a connection whose peer went away before anything was
// written to it.
type brokenWrites struct{ net.Conn }

func (brokenWrites) Write([]byte) (int, error) {
	return 0, &net.OpError{Op: "write", Net: "tcp", Err: syscall.EPIPE}
}

// TestBufferedIsNotWritten: net/http reports a request written once it is
// in the connection's buffer, before flushing it. A small request whose
// flush fails never left, and was not sent.
func TestBufferedIsNotWritten(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("the request reached the server")
	}))
	defer srv.Close()
	c := NewHTTPClient()
	var d net.Dialer
	c.Transport.(*http.Transport).DialContext = wireDialer(func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return brokenWrites{conn}, nil
	})
	req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(`{"text":"hi"}`))
	require.NoError(t, err)
	_, err = DoHTTP(c, req, API{Name: "test"})
	require.Error(t, err)
	pe := Classify(err)
	assert.False(t, pe.MaybeSent, err)
	assert.False(t, pe.Permanent, err)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestUntracedTransportIsJudgedByItsError: a transport that reports no
// attempt cannot show that nothing was written.
func TestUntracedTransportIsJudgedByItsError(t *testing.T) {
	c := &http.Client{Transport: roundTripperFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("connection lost")
	})}
	req, err := http.NewRequest(http.MethodPost, "http://example.invalid/", strings.NewReader("x"))
	require.NoError(t, err)
	_, err = DoHTTP(c, req, API{Name: "test"})
	assert.True(t, Classify(err).MaybeSent, err)
}

func TestClassifyHTTPStatus(t *testing.T) {
	h := http.Header{"Retry-After": {"7"}}
	cases := []struct {
		code               int
		permanent          bool
		maybeSentIfUnkeyed bool
		retryAfter         time.Duration
	}{
		{code: 200}, {code: 204},
		{code: 301, permanent: true}, {code: 400, permanent: true}, {code: 404, permanent: true}, {code: 422, permanent: true},
		{code: 408, retryAfter: 7 * time.Second},
		{code: 429, retryAfter: 7 * time.Second},
		{code: 503, retryAfter: 7 * time.Second},
		{code: 500, maybeSentIfUnkeyed: true, retryAfter: 7 * time.Second},
		{code: 501, maybeSentIfUnkeyed: true, retryAfter: 7 * time.Second},
		{code: 502, maybeSentIfUnkeyed: true, retryAfter: 7 * time.Second},
		{code: 504, maybeSentIfUnkeyed: true, retryAfter: 7 * time.Second},
		{code: 524, maybeSentIfUnkeyed: true, retryAfter: 7 * time.Second},
	}
	for _, c := range cases {
		t.Run(strconv.Itoa(c.code), func(t *testing.T) {
			for _, r := range []Receiver{Unkeyed, Keyed, Deduplicating} {
				err := ClassifyHTTPStatus(c.code, h, time.Now(), r)
				if c.code < 300 {
					assert.NoError(t, err)
					continue
				}
				pe := Classify(err)
				assert.Equal(t, c.permanent, pe.Permanent)
				assert.Equal(t, c.maybeSentIfUnkeyed && r != Deduplicating, pe.MaybeSent, "receiver %d", r)
				if !c.permanent {
					assert.Equal(t, c.retryAfter, pe.RetryAfter)
				}
			}
		})
	}
}

// TestGuardedClientRefusesBeforeConnecting: a destination the guard
// refuses fails permanently, certainly not sent, with the guard's reason
// alone, and no connection is made.
func TestGuardedClientRefusesBeforeConnecting(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("x"))
	require.NoError(t, err)
	_, err = DoHTTP(NewGuardedHTTPClient(egress.Guard{}), req, API{Name: "test"})
	require.Error(t, err)
	pe := Classify(err)
	assert.True(t, pe.Permanent, err)
	assert.False(t, pe.MaybeSent, err)
	assert.Equal(t, "test: destination 127.0.0.1 is a loopback address; refused by the egress guard (allow it with ONCEFLOW_EGRESS_ALLOW=127.0.0.0/8)", err.Error())
	assert.Zero(t, conns.Load())

	req, err = http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("x"))
	require.NoError(t, err)
	_, err = DoHTTP(NewGuardedHTTPClient(egress.Guard{Allow: egress.Loopback()}), req, API{Name: "test"})
	require.NoError(t, err)
	assert.EqualValues(t, 1, conns.Load())
}

// TestGuardedClientUsesNoProxy: through a proxy, the guard would judge the
// proxy's address and not the destination's.
func TestGuardedClientUsesNoProxy(t *testing.T) {
	assert.Nil(t, NewGuardedHTTPClient(egress.Guard{}).Transport.(*http.Transport).Proxy)
	assert.NotNil(t, NewHTTPClient().Transport.(*http.Transport).Proxy, "operator endpoints may sit behind one")
}

// TestMaxBody: no more of an answer than API.MaxBody is read, whether the
// status was a success or an error.
func TestMaxBody(t *testing.T) {
	code := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		_, _ = w.Write([]byte(strings.Repeat("x", 2<<20)))
	}))
	defer srv.Close()
	for _, c := range []struct {
		max  int64
		want int
	}{{0, DefaultMaxBody}, {CallerMaxBody, CallerMaxBody}} {
		for _, code = range []int{http.StatusOK, http.StatusBadRequest} {
			var detail int
			api := API{Name: "test", MaxBody: c.max, Detail: func(b []byte) string { detail = len(b); return "" }}
			req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
			require.NoError(t, err)
			resp, _ := DoHTTP(NewHTTPClient(), req, api)
			assert.Len(t, resp.Body, c.want, "MaxBody %d, HTTP %d", c.max, code)
			if code != http.StatusOK {
				assert.Equal(t, c.want, detail, "MaxBody %d: what Detail reads", c.max)
			}
		}
	}
}

func TestExcerpt(t *testing.T) {
	for in, want := range map[string]string{
		"":                                  "",
		"  invalid_payload \n":              "invalid_payload",
		"a\x1b[2Jb\x00c\x7fd\u202ee\u200bf": "a[2Jbcdef",
		"line one\r\nline two\tend":         "line one line two end",
		"bad \xff\xfe utf-8":                "bad utf-8",
		strings.Repeat("é", 150):            strings.Repeat("é", 98) + "…",
	} {
		got := Excerpt(in)
		assert.Equal(t, want, got, "%q", in)
		assert.LessOrEqual(t, len(got), MaxExcerpt)
	}
	long := Excerpt(strings.Repeat("a", 1<<20))
	assert.Len(t, long, MaxExcerpt)
	assert.True(t, strings.HasSuffix(long, "…"))
}
