package httpapi_test

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/httpapi"
)

// generous bounds how long the server may take to cut a stalled client off
// with the short timeouts below; it only fails a server that never does.
const generous = 30 * time.Second

func slowServer(t *testing.T) string {
	s := servers.New(t, servers.WorkerConfig(), nil)
	srv := httpapi.NewServer(httpapi.Handler(s.Client, slog.New(slog.NewTextHandler(io.Discard, nil))),
		httpapi.Timeouts{ReadHeader: 300 * time.Millisecond, Read: 500 * time.Millisecond, Write: 2 * time.Second, Idle: 500 * time.Millisecond})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

// closedByServer reads conn until the server closes it, and fails the test
// if it stays open for generous.
func closedByServer(t *testing.T, conn net.Conn) string {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(generous)))
	got, err := io.ReadAll(conn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the server kept the stalled connection open for %v", generous)
	}
	return string(got)
}

func TestSlowClientsAreCutOff(t *testing.T) {
	addr := slowServer(t)

	t.Run("headers sent a byte at a time, never finished", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer func() { _ = conn.Close() }()
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			_, _ = conn.Write([]byte("POST /v1/notifications HTTP/1.1\r\nHost: onceflow\r\nX-Slow: "))
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
					if _, err := conn.Write([]byte("a")); err != nil {
						return
					}
				}
			}
		}()
		closedByServer(t, conn)
	})

	t.Run("body announced, never finished", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer func() { _ = conn.Close() }()
		_, err = conn.Write([]byte("POST /v1/notifications HTTP/1.1\r\nHost: onceflow\r\nIdempotency-Key: \"slow-body\"\r\n" +
			"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"body\":\"x"))
		require.NoError(t, err)
		answer := closedByServer(t, conn)
		if answer != "" {
			resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(answer)), nil)
			require.NoError(t, err)
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "a body cut off by the read timeout starts nothing")
		}
	})

	t.Run("kept alive and idle", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer func() { _ = conn.Close() }()
		_, err = conn.Write([]byte("GET /v1/openapi.yaml HTTP/1.1\r\nHost: onceflow\r\n\r\n"))
		require.NoError(t, err)
		answer := closedByServer(t, conn)
		assert.True(t, strings.HasPrefix(answer, "HTTP/1.1 200"), "answered, then closed when idle: %.40q", answer)
	})

	t.Run("nothing sent at all", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer func() { _ = conn.Close() }()
		assert.Empty(t, closedByServer(t, conn))
	})
}

// TestDefaultTimeoutsAreSet: `onceflow api` and `onceflow dev` serve with
// DefaultTimeouts; a zero there would be no timeout at all.
func TestDefaultTimeoutsAreSet(t *testing.T) {
	d := httpapi.DefaultTimeouts()
	srv := httpapi.NewServer(http.NotFoundHandler(), d)
	for name, v := range map[string]time.Duration{"ReadHeaderTimeout": srv.ReadHeaderTimeout, "ReadTimeout": srv.ReadTimeout, "WriteTimeout": srv.WriteTimeout, "IdleTimeout": srv.IdleTimeout} {
		assert.Positive(t, v, name)
	}
	assert.Greater(t, d.Write, d.Read, "the answer may come after a slow body")
}
