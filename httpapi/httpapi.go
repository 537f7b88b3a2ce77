// Package httpapi serves Onceflow's HTTP API on top of the Go client
// (starter.Client): start a notification with an Idempotency-Key, read its
// status, cancel it. Its OpenAPI document, openapi.yaml, sits beside it and
// is served at /v1/openapi.yaml.
package httpapi

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/broadcast"
	"github.com/onceflow/onceflow/digest"
	"github.com/onceflow/onceflow/preferences"
	"github.com/onceflow/onceflow/revocation"
	"github.com/onceflow/onceflow/starter"
)

// OpenAPI is the OpenAPI 3.1 description of the HTTP API, served at
// /v1/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

// maxBody bounds a request body: a notification is at most 64 KiB of body
// plus 50 deliveries.
const maxBody = 1 << 20

// Handler serves the HTTP API on top of a Client:
//
//	POST   /v1/notifications         start one (Idempotency-Key header)
//	GET    /v1/notifications/{key}   its status
//	DELETE /v1/notifications/{key}   cancel it before it is delivered
//	GET    /v1/openapi.yaml          this API's description
//	GET    /healthz                  200 while Temporal answers, else 503
//
// POST follows the IETF Idempotency-Key draft: the header is required; a
// repeat with the same key and payload gets the same answer; the same key
// with another payload is refused with 422. Nothing is started on a 4xx.
//
// With WithTokens, the notification routes require a bearer token and work
// in its tenant's scope (see auth.go); /healthz and the OpenAPI document
// stay public.
func Handler(c *starter.Client, logger *slog.Logger, opts ...Option) http.Handler {
	h := &api{c: c, log: logger}
	for _, opt := range opts {
		opt(h)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /v1/notifications", h.authorized(h.post))
	mux.Handle("GET /v1/notifications/{key...}", h.authorized(h.get))
	mux.Handle("DELETE /v1/notifications/{key...}", h.authorized(h.delete))
	h.broadcastRoutes(mux)  // broadcast.go
	h.preferenceRoutes(mux) // preferences.go
	h.recoverRoutes(mux)    // recover.go
	h.feedRoutes(mux)       // feed.go
	h.digestRoutes(mux)     // digest.go
	h.revocationRoutes(mux) // revoke.go
	mux.HandleFunc("GET /healthz", h.health)
	mux.HandleFunc("GET /v1/openapi.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(OpenAPI)
	})
	return mux
}

type api struct {
	c      *starter.Client
	log    *slog.Logger
	tokens *Tokens
	// prefs is set by WithPreferences (preferences.go).
	prefs *preferences.Service
	// broadcasts is set by WithBroadcasts (broadcast.go).
	broadcasts *broadcast.Client
	// digests is set by WithDigests (digest.go).
	digests *digest.Client
	// feed is set by WithFeed (feed.go).
	feed *feedAPI
	// limits is set by WithLimits (limits.go).
	limits *limiter
	// revoked is set by WithRevocation (revoke.go).
	revoked *revocation.Store
}

// Accepted is the answer to a POST: where the notification runs and where
// to follow it.
type Accepted struct {
	starter.Started
	Key       string `json:"key"`
	StatusURL string `json:"status_url"`
}

// Problem is the body of every error answer: RFC 9457 problem details,
// served as application/problem+json. The status says what kind of
// problem it is, so Type is "about:blank" and Title the status's text.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	// Detail says what went wrong with this request and what to do.
	Detail string `json:"detail"`
	// Field names the offending field, header or query parameter, when
	// there is one (an extension member).
	Field string `json:"field,omitempty"`
	// Error repeats Detail under the name that error answers had before
	// they were problem details, for clients not yet moved to detail. It
	// will be removed in a later release.
	Error string `json:"error"`
}

// ProblemType is the media type of error answers (RFC 9457).
const ProblemType = "application/problem+json"

func (h *api) post(w http.ResponseWriter, r *http.Request) {
	key, ok := requestKey(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeProblem(w, http.StatusRequestEntityTooLarge, Problem{Detail: fmt.Sprintf("the body is larger than %d bytes", maxBody)})
		return
	case err != nil:
		writeProblem(w, http.StatusBadRequest, Problem{Detail: "could not read the body: " + err.Error()})
		return
	}
	n, err := onceflow.DecodeNotification(bytes.NewReader(body))
	if err != nil {
		writeValidation(w, err)
		return
	}
	if !bodyKey(w, &n.Key, n.Tenant, key) {
		return
	}
	started, err := h.client(r).Send(r.Context(), n)
	var conflict *onceflow.ConflictError
	var invalid *onceflow.ValidationError
	switch {
	case errors.As(err, &conflict):
		writeProblem(w, http.StatusUnprocessableEntity, Problem{Detail: err.Error(), Field: "Idempotency-Key"})
		return
	case errors.As(err, &invalid):
		writeValidation(w, err)
		return
	case err != nil:
		h.fail(w, r, err)
		return
	}
	statusURL := statusPath(n.Key)
	w.Header().Set("Location", statusURL)
	writeJSON(w, http.StatusAccepted, Accepted{Started: started, Key: n.Key, StatusURL: statusURL})
}

// requestKey checks what every POST shares: a JSON body, if the type is
// given, and the Idempotency-Key header, whose key it returns. On failure
// it has answered and ok is false.
func requestKey(w http.ResponseWriter, r *http.Request) (key string, ok bool) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		writeProblem(w, http.StatusUnsupportedMediaType, Problem{Detail: "Content-Type must be application/json", Field: "Content-Type"})
		return "", false
	}
	key, err := idempotencyKey(r.Header.Values("Idempotency-Key"))
	if err != nil {
		writeProblem(w, http.StatusBadRequest, Problem{Detail: err.Error(), Field: "Idempotency-Key"})
		return "", false
	}
	return key, true
}

// bodyKey reconciles a decoded body with the request: the body names no
// tenant (the token does), and its key, if any, is the header's; an empty
// one is set to it. On failure it has answered and returns false.
func bodyKey(w http.ResponseWriter, bodyKey *string, tenant, headerKey string) bool {
	if tenant != "" {
		writeProblem(w, http.StatusBadRequest, Problem{Detail: "the tenant is the API token's; leave it out of the body", Field: "tenant"})
		return false
	}
	switch {
	case *bodyKey == "":
		*bodyKey = headerKey
	case *bodyKey != headerKey:
		writeProblem(w, http.StatusBadRequest, Problem{Detail: fmt.Sprintf("key %q differs from the Idempotency-Key header %q", *bodyKey, headerKey), Field: "key"})
		return false
	}
	return true
}

func (h *api) get(w http.ResponseWriter, r *http.Request) {
	if _, st, ok := h.status(w, r); ok {
		writeJSON(w, http.StatusOK, st)
	}
}

func (h *api) delete(w http.ResponseWriter, r *http.Request) {
	key, st, ok := h.status(w, r)
	if !ok {
		return
	}
	if st.Execution != "running" {
		writeProblem(w, http.StatusConflict, Problem{Detail: fmt.Sprintf("notification %q has already finished (%s); there is nothing to cancel", key, st.Execution)})
		return
	}
	if st.Result.Digest != nil {
		writeProblem(w, http.StatusConflict, Problem{Detail: eventNotCancellable(key, st.Result.Digest)}) // digest.go
		return
	}
	if err := h.client(r).Cancel(r.Context(), key); err != nil {
		h.lookupFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"key": key, "status": "cancel requested"})
}

// status looks up the notification named by the path; on failure it has
// answered and ok is false.
func (h *api) status(w http.ResponseWriter, r *http.Request) (key string, st starter.Status, ok bool) {
	key = r.PathValue("key")
	if err := onceflow.ValidateKey(key); err != nil {
		writeValidation(w, err)
		return key, st, false
	}
	st, err := h.client(r).Status(r.Context(), key)
	if err != nil {
		h.lookupFailed(w, r, err)
		return key, st, false
	}
	return key, st, true
}

func (h *api) health(w http.ResponseWriter, r *http.Request) {
	if err := h.c.CheckHealth(r.Context()); err != nil {
		h.log.Warn("Health check failed", "error", err)
		writeProblem(w, http.StatusServiceUnavailable, Problem{Detail: "Temporal is not reachable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (h *api) lookupFailed(w http.ResponseWriter, r *http.Request, err error) {
	var nf *onceflow.NotFoundError
	if errors.As(err, &nf) {
		writeProblem(w, http.StatusNotFound, Problem{Detail: err.Error()})
		return
	}
	h.fail(w, r, err)
}

// fail answers an error that is not the caller's: 503 when the request's
// context ended or Temporal could not be reached, else 500. The detail goes
// to the log, not to the caller.
func (h *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	h.log.Error("API request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	code := http.StatusInternalServerError
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		code = http.StatusServiceUnavailable
	}
	writeProblem(w, code, Problem{Detail: "the notification service could not complete the request; retry with the same Idempotency-Key"})
}

func writeValidation(w http.ResponseWriter, err error) {
	p := Problem{Detail: err.Error()}
	var ve *onceflow.ValidationError
	if errors.As(err, &ve) {
		p.Field = ve.Field
	}
	writeProblem(w, http.StatusBadRequest, p)
}

func writeProblem(w http.ResponseWriter, code int, p Problem) {
	p.Type, p.Title, p.Status, p.Error = "about:blank", http.StatusText(code), code, p.Detail
	writeBody(w, code, ProblemType, p)
}

func writeJSON(w http.ResponseWriter, code int, v any) { writeBody(w, code, "application/json", v) }

func writeBody(w http.ResponseWriter, code int, mediaType string, v any) {
	w.Header().Set("Content-Type", mediaType)
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
