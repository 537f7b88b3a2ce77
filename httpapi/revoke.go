package httpapi

import (
	"net/http"
	"time"

	"github.com/onceflow/onceflow/revocation"
)

// WithRevocation serves POST /v1/subscribers/{id}/revoke from s. Without
// it the route answers 503: the not-before times are kept in Redis, and
// the API was started without it.
func WithRevocation(s *revocation.Store) Option { return func(h *api) { h.revoked = s } }

// Revoked is the answer to POST /v1/subscribers/{id}/revoke.
type Revoked struct {
	Subscriber string `json:"subscriber"`
	// NotBefore is the subscriber's not-before time: every subscriber
	// token and unsubscribe link issued at or before it is refused.
	NotBefore time.Time `json:"not_before"`
}

// The revocation route, added to Handler's mux; it needs the app's bearer
// token (a subscriber token cannot revoke) and works in its tenant:
//
//	POST /v1/subscribers/{id}/revoke  refuse every subscriber token and unsubscribe link issued until now
func (h *api) revocationRoutes(mux *http.ServeMux) {
	mux.Handle("POST /v1/subscribers/{id}/revoke", h.authorized(h.revoke))
}

func (h *api) revoke(w http.ResponseWriter, r *http.Request) {
	id, ok := subscriber(w, r)
	if !ok {
		return
	}
	if h.revoked == nil {
		writeProblem(w, http.StatusServiceUnavailable, Problem{Detail: "this API revokes nothing: it was started without REDIS_URL, where revocations are kept"})
		return
	}
	nb, err := h.revoked.Revoke(r.Context(), tenantOf(r.Context()), id, time.Now())
	if err != nil {
		h.log.Error("API request failed", "method", r.Method, "path", r.Pattern, "error", err)
		writeProblem(w, http.StatusServiceUnavailable, Problem{Detail: "the revocation may not have been stored; retry (revoking twice is harmless)"})
		return
	}
	writeJSON(w, http.StatusOK, Revoked{Subscriber: id, NotBefore: nb})
}
