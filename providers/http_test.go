package providers

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
			for _, r := range []Receiver{Unkeyed, Deduplicating} {
				err := ClassifyHTTPStatus(c.code, h, time.Now(), r)
				if c.code < 300 {
					assert.NoError(t, err)
					continue
				}
				pe := Classify(err)
				assert.Equal(t, c.permanent, pe.Permanent)
				assert.Equal(t, c.maybeSentIfUnkeyed && r == Unkeyed, pe.MaybeSent, "receiver %d", r)
				if !c.permanent {
					assert.Equal(t, c.retryAfter, pe.RetryAfter)
				}
			}
		})
	}
}
