package providers

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A receiver's answer is read to API.MaxBody and no further: a short one
// is read to its end, so the connection goes back to the pool and is
// reused; a huge one is not read to its end, so the connection is closed
// rather than kept with the rest of the answer unread (or drained).
func TestAnswerBeyondMaxBodyClosesTheConnection(t *testing.T) {
	huge := strings.Repeat("x", 64<<20)
	var mu sync.Mutex
	closed := 0
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		if r.URL.Path == "/huge" {
			_, _ = w.Write([]byte(huge))
			return
		}
		_, _ = w.Write([]byte("short\x1b[2J\r\nanswer"))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			mu.Lock()
			closed++
			mu.Unlock()
		}
	}
	srv.Start()
	defer srv.Close()
	c := NewHTTPClient()
	api := API{Name: "test", MaxBody: CallerMaxBody, Detail: func(b []byte) string { return string(b) }}
	send := func(path string) (reused bool, err error) {
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
		req, rerr := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader("{}"))
		require.NoError(t, rerr)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		resp, err := DoHTTP(c, req, api)
		assert.LessOrEqual(t, len(resp.Body), CallerMaxBody)
		return reused, err
	}

	_, err := send("/short")
	require.Error(t, err)
	assert.Equal(t, "test: receiver answered HTTP 400 Bad Request: short[2J answer", err.Error())
	reused, _ := send("/short")
	assert.True(t, reused, "a short answer read to its end leaves the connection reusable")

	reused, err = send("/huge")
	assert.True(t, reused)
	assert.LessOrEqual(t, len(err.Error()), len("test: receiver answered HTTP 400 Bad Request: ")+MaxExcerpt)
	reused, _ = send("/short")
	assert.False(t, reused, "the connection that carried the huge answer was not kept")
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return closed >= 1 }, 30*time.Second, 10*time.Millisecond, "the server saw the connection closed")
}
