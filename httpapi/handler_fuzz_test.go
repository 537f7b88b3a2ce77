package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/httpapi"
	"github.com/onceflow/onceflow/starter"
)

// FuzzPostNotification sends arbitrary Idempotency-Key headers and bodies
// to POST /v1/notifications, served by the real handler over a real
// starter.Client on this binary's temporaltest server (no worker: a valid
// input starts a workflow, which then waits). No input may make it panic
// or answer 5xx, and an input it refuses must not have started anything.
func FuzzPostNotification(f *testing.F) {
	f.Add(`"fuzz-1"`, []byte(`{"body":"hi","deliveries":[{"channel":"webhook","to":"https://example.com/h"}]}`))
	c := starter.New(servers.Temporal.GetDefaultClient(), "fuzz")
	h := httpapi.Handler(c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var mu sync.Mutex
	started := map[string]bool{}
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/notifications", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header["Idempotency-Key"] = []string{header}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("header %q, body %q: HTTP %d %s", header, body, w.Code, w.Body)
		}
		if w.Code == http.StatusAccepted {
			var a httpapi.Accepted
			if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil || a.Key == "" {
				t.Fatalf("202 without a key: %s", w.Body)
			}
			mu.Lock()
			started[a.Key] = true
			mu.Unlock()
			return
		}
		if w.Code == http.StatusUnprocessableEntity {
			// A conflict: the key is taken, by an earlier input or test.
			return
		}
		// Only a header that is a valid key could name a workflow.
		key := unquoted(strings.Trim(header, " \t"))
		mu.Lock()
		before := started[key]
		mu.Unlock()
		if before || onceflow.ValidateKey(key) != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := c.Status(ctx, key)
		var nf *onceflow.NotFoundError
		if !errors.As(err, &nf) {
			t.Fatalf("HTTP %d for header %q, body %q, yet Status says %v", w.Code, header, body, err)
		}
	})
}

// unquoted is the key a plain sf-string header names: the text between
// its quotes, escapes undone; anything else names none.
func unquoted(header string) string {
	if len(header) < 2 || header[0] != '"' || header[len(header)-1] != '"' {
		return ""
	}
	var b bytes.Buffer
	s := header[1 : len(header)-1]
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
