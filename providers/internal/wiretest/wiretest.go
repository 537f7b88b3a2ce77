// Package wiretest makes the network faults that decide whether an HTTP
// provider's failed request may have been performed, for the providers'
// tests: nothing listening, a reset before the request's body was read, and
// a reset or a silence after the whole request was read.
package wiretest

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/onceflow/onceflow/providers"
)

// Deadline bounds every send in these tests; Silent's sends run into it.
const Deadline = 2 * time.Second

// LargeBody is a message body larger than the two sockets' buffers can
// hold, so that a server that stops reading after the headers catches the
// client mid-body.
func LargeBody() string { return strings.Repeat("x", 16<<20) }

// Refused returns the URL of a port on which nothing listens.
func Refused(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

// Serve starts a server that handles every request with h and returns its
// URL.
func Serve(t testing.TB, h http.HandlerFunc) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// ResetBeforeBody resets the connection as soon as it has the request's
// headers, without reading the body.
func ResetBeforeBody(w http.ResponseWriter, _ *http.Request) { reset(w) }

// ResetAfterBody reads the whole request, then resets the connection
// without answering.
func ResetAfterBody(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	reset(w)
}

// Silent reads the whole request and never answers; it returns when the
// client goes away.
func Silent(_ http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(5 * Deadline):
	}
}

// reset closes the connection with SO_LINGER 0, which sends a TCP RST.
func reset(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	_ = conn.(*net.TCPConn).SetLinger(0)
	_ = conn.Close()
}

// Send sends m through p within Deadline, its body made LargeBody when
// large, and checks that it failed retryably, MaybeSent as maybeSent says,
// asking to wait for wait.
func Send(t *testing.T, p providers.Provider, m providers.Message, large, maybeSent bool, wait time.Duration) {
	t.Helper()
	if large {
		m.Body = LargeBody()
	}
	ctx, cancel := context.WithTimeout(context.Background(), Deadline)
	defer cancel()
	_, err := p.Send(ctx, m)
	if err == nil {
		t.Fatal("the send succeeded")
	}
	pe := providers.Classify(err)
	if pe.Permanent {
		t.Errorf("permanent, want retryable: %v", err)
	}
	if pe.MaybeSent != maybeSent {
		t.Errorf("MaybeSent = %v, want %v: %v", pe.MaybeSent, maybeSent, err)
	}
	if pe.RetryAfter != wait {
		t.Errorf("RetryAfter = %v, want %v: %v", pe.RetryAfter, wait, err)
	}
}
