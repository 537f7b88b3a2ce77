package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/preferences"
)

// maxPreferencesBody bounds a preferences document: MaxOptOuts opt-outs of
// the longest category fit several times over.
const maxPreferencesBody = 64 << 10

// WithPreferences serves the subscriber preference routes from s, in each
// request's tenant. Without it they answer 503: the preferences are kept in
// Redis, and the API was started without it.
func WithPreferences(s *preferences.Service) Option { return func(h *api) { h.prefs = s } }

// preferences is the preference service in the request's tenant; nil, after
// answering 503, when the API has none.
func (h *api) preferences(w http.ResponseWriter, r *http.Request) *preferences.Service {
	if h.prefs == nil {
		writeProblem(w, http.StatusServiceUnavailable, Problem{Detail: "this API serves no subscriber preferences: it was started without REDIS_URL, where they are kept"})
		return nil
	}
	return h.prefs.ForTenant(tenantOf(r.Context()))
}

// The subscriber routes, added to Handler's mux. The first three need a
// bearer token and work in its tenant; the unsubscribe page is public:
// the link's signature is its credential (unsubscribe.go).
//
//	GET  /v1/subscribers/{id}/preferences        the subscriber's opt-outs
//	PUT  /v1/subscribers/{id}/preferences        replace them
//	POST /v1/subscribers/{id}/unsubscribe-links  make a signed unsubscribe link
//	GET  /v1/unsubscribe/{token}                 confirm page (HTML)
//	POST /v1/unsubscribe/{token}                 one-click opt-out (RFC 8058)
func (h *api) preferenceRoutes(mux *http.ServeMux) {
	mux.Handle("GET /v1/subscribers/{id}/preferences", h.authorized(h.getPreferences))
	mux.Handle("PUT /v1/subscribers/{id}/preferences", h.authorized(h.putPreferences))
	mux.Handle("POST /v1/subscribers/{id}/unsubscribe-links", h.authorized(h.postUnsubscribeLink))
	mux.HandleFunc("GET "+preferences.LinkPath+"{token}", h.unsubscribePage)
	mux.HandleFunc("POST "+preferences.LinkPath+"{token}", h.unsubscribe)
}

// subscriber reads and checks the path's subscriber id; on failure it has
// answered 400 and ok is false.
func subscriber(w http.ResponseWriter, r *http.Request) (id string, ok bool) {
	id = r.PathValue("id")
	if err := onceflow.ValidateSubscriber(id); err != nil {
		writePreferenceProblem(w, err)
		return id, false
	}
	return id, true
}

func (h *api) getPreferences(w http.ResponseWriter, r *http.Request) {
	id, ok := subscriber(w, r)
	if !ok {
		return
	}
	s := h.preferences(w, r)
	if s == nil {
		return
	}
	p, err := s.Get(r.Context(), id)
	if err != nil {
		h.preferencesFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (h *api) putPreferences(w http.ResponseWriter, r *http.Request) {
	id, ok := subscriber(w, r)
	if !ok || !jsonBody(w, r) {
		return
	}
	p, err := preferences.Decode(http.MaxBytesReader(w, r.Body, maxPreferencesBody))
	if err != nil {
		writePreferenceProblem(w, err)
		return
	}
	s := h.preferences(w, r)
	if s == nil {
		return
	}
	stored, err := s.Set(r.Context(), id, p)
	if err != nil {
		h.preferencesFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, stored)
}

// linkRequest is the body of POST .../unsubscribe-links.
type linkRequest struct {
	Category string `json:"category"`
	Channel  string `json:"channel"`
	// ExpiresIn is a Go duration; empty is preferences.DefaultLinkTTL.
	ExpiresIn string `json:"expires_in"`
}

func (h *api) postUnsubscribeLink(w http.ResponseWriter, r *http.Request) {
	id, ok := subscriber(w, r)
	if !ok || !jsonBody(w, r) {
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPreferencesBody))
	dec.DisallowUnknownFields()
	var req linkRequest
	if err := dec.Decode(&req); err != nil {
		field := "body"
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			field = strings.Trim(name, `"`)
		}
		writeProblem(w, http.StatusBadRequest, Problem{Detail: `the body must be {"category": ..., "channel": ..., "expires_in": "720h"}: ` + err.Error(), Field: field})
		return
	}
	ttl := preferences.DefaultLinkTTL
	if req.ExpiresIn != "" {
		var err error
		if ttl, err = time.ParseDuration(req.ExpiresIn); err != nil {
			ttl = -1 // ValidateTTL names the field
		}
	}
	s := h.preferences(w, r)
	if s == nil {
		return
	}
	link, err := s.NewUnsubscribeLink(id, req.Category, req.Channel, ttl)
	if err != nil {
		h.preferencesFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, link)
}

// jsonBody refuses a body that says it is not JSON; on failure it has
// answered and returns false.
func jsonBody(w http.ResponseWriter, r *http.Request) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		writeProblem(w, http.StatusUnsupportedMediaType, Problem{Detail: "Content-Type must be application/json", Field: "Content-Type"})
		return false
	}
	return true
}

// preferencesFailed answers an error of the preference store.
func (h *api) preferencesFailed(w http.ResponseWriter, r *http.Request, err error) {
	var invalid *onceflow.ValidationError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &invalid):
		writePreferenceProblem(w, err)
	case errors.As(err, &tooBig):
		writeProblem(w, http.StatusRequestEntityTooLarge, Problem{Detail: fmt.Sprintf("the body is larger than %d bytes", maxPreferencesBody)})
	case errors.Is(err, preferences.ErrNoUnsubscribeKey):
		writeProblem(w, http.StatusServiceUnavailable, Problem{Detail: "this API makes no unsubscribe links: it was started without " + preferences.EnvUnsubscribeSecret})
	case errors.Is(err, preferences.ErrNoPublicURL):
		writeProblem(w, http.StatusServiceUnavailable, Problem{Detail: "this API makes no unsubscribe links: it was started without " + preferences.EnvPublicURL})
	default:
		h.log.Error("API request failed", "method", r.Method, "path", r.Pattern, "error", err)
		writeProblem(w, http.StatusServiceUnavailable, Problem{Detail: "the preference store could not complete the request; retry"})
	}
}

// writePreferenceProblem answers 400 for a *onceflow.ValidationError,
// naming its field.
func writePreferenceProblem(w http.ResponseWriter, err error) {
	p := Problem{Detail: err.Error()}
	var ve *onceflow.ValidationError
	if errors.As(err, &ve) {
		p = Problem{Detail: "invalid request: " + ve.Field + " " + ve.Reason, Field: ve.Field}
	}
	writeProblem(w, http.StatusBadRequest, p)
}
