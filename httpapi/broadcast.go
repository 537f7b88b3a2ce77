package httpapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/broadcast"
)

// WithBroadcasts serves the broadcast routes from c, in each request's
// tenant. Without it (an API started without REDIS_URL, where broadcasts
// keep their recipient lists) they answer 503.
func WithBroadcasts(c *broadcast.Client) Option { return func(h *api) { h.broadcasts = c } }

// broadcastClient is the broadcast client in r's tenant, or nil after
// answering 503 when the API serves no broadcasts.
func (h *api) broadcastClient(w http.ResponseWriter, r *http.Request) *broadcast.Client {
	if h.broadcasts == nil {
		writeProblem(w, http.StatusServiceUnavailable, Problem{Detail: "this API serves no broadcasts: it was started without REDIS_URL, where broadcasts keep their recipient lists"})
		return nil
	}
	return h.broadcasts.ForTenant(tenantOf(r.Context()))
}

// maxBroadcastBody bounds a broadcast's request body: 100,000 recipients
// (onceflow.MaxRecipients) at about 600 bytes each, an id, a URL or
// address and a little template data, plus a 64 KiB body. The body is
// decoded as it streams in, never held whole; the decoded broadcast takes
// about as much memory again.
const maxBroadcastBody = 64 << 20

// The broadcast routes, added to Handler's mux:
//
//	POST   /v1/broadcasts         start one (Idempotency-Key header)
//	GET    /v1/broadcasts/{key}   its counts and a page of its problems (?cursor=&limit=)
//	DELETE /v1/broadcasts/{key}   cancel what has not been sent
func (h *api) broadcastRoutes(mux *http.ServeMux) {
	mux.Handle("POST /v1/broadcasts", h.authorized(h.postBroadcast))
	mux.Handle("GET /v1/broadcasts/{key...}", h.authorized(h.getBroadcast))
	mux.Handle("DELETE /v1/broadcasts/{key...}", h.authorized(h.deleteBroadcast))
}

func (h *api) postBroadcast(w http.ResponseWriter, r *http.Request) {
	key, ok := requestKey(w, r)
	if !ok {
		return
	}
	body := http.MaxBytesReader(w, r.Body, maxBroadcastBody)
	b, err := onceflow.DecodeBroadcast(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if _, rerr := body.Read(make([]byte, 1)); errors.As(rerr, &tooBig) {
			writeProblem(w, http.StatusRequestEntityTooLarge, Problem{Detail: fmt.Sprintf("the body is larger than %d bytes", maxBroadcastBody)})
			return
		}
		writeValidation(w, err)
		return
	}
	if !bodyKey(w, &b.Key, b.Tenant, key) {
		return
	}
	c := h.broadcastClient(w, r)
	if c == nil {
		return
	}
	started, err := c.Send(r.Context(), b)
	var conflict *onceflow.ConflictError
	var invalid *onceflow.ValidationError
	switch {
	case errors.As(err, &conflict):
		writeProblem(w, http.StatusUnprocessableEntity, Problem{Detail: fmt.Sprintf("key %q is already used by a broadcast with a different payload; use a new key for a new broadcast", b.Key), Field: "Idempotency-Key"})
		return
	case errors.As(err, &invalid):
		writeValidation(w, err)
		return
	case err != nil:
		h.fail(w, r, err)
		return
	}
	statusURL := broadcastPath(b.Key)
	w.Header().Set("Location", statusURL)
	writeJSON(w, http.StatusAccepted, Accepted{Started: started, Key: b.Key, StatusURL: statusURL})
}

func (h *api) getBroadcast(w http.ResponseWriter, r *http.Request) {
	cursor, limit, ok := pageQuery(w, r)
	if !ok {
		return
	}
	if _, st, ok := h.broadcastStatus(w, r, broadcast.Page{Cursor: cursor, Limit: limit}); ok {
		writeJSON(w, http.StatusOK, st)
	}
}

func (h *api) deleteBroadcast(w http.ResponseWriter, r *http.Request) {
	key, st, ok := h.broadcastStatus(w, r, broadcast.Page{Limit: 1})
	if !ok {
		return
	}
	if st.Execution != "running" {
		writeProblem(w, http.StatusConflict, Problem{Detail: fmt.Sprintf("broadcast %q has already finished (%s); there is nothing to cancel", key, st.Execution)})
		return
	}
	if err := h.broadcasts.ForTenant(tenantOf(r.Context())).Cancel(r.Context(), key); err != nil {
		h.broadcastLookupFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"key": key, "status": "cancel requested"})
}

func (h *api) broadcastStatus(w http.ResponseWriter, r *http.Request, page broadcast.Page) (string, broadcast.Status, bool) {
	key := r.PathValue("key")
	if err := onceflow.ValidateKey(key); err != nil {
		writeValidation(w, err)
		return key, broadcast.Status{}, false
	}
	c := h.broadcastClient(w, r)
	if c == nil {
		return key, broadcast.Status{}, false
	}
	st, err := c.Status(r.Context(), key, page)
	var invalid *onceflow.ValidationError
	if errors.As(err, &invalid) {
		writeValidation(w, err)
		return key, st, false
	}
	if err != nil {
		h.broadcastLookupFailed(w, r, err)
		return key, st, false
	}
	return key, st, true
}

func (h *api) broadcastLookupFailed(w http.ResponseWriter, r *http.Request, err error) {
	var nf *onceflow.NotFoundError
	if errors.As(err, &nf) {
		writeProblem(w, http.StatusNotFound, Problem{Detail: err.Error()})
		return
	}
	h.fail(w, r, err)
}
