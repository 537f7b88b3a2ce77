package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/starter"
)

// maxRecoverBody bounds POST /v1/recover's body: a few short fields.
const maxRecoverBody = 4 << 10

// recoverRequest is POST /v1/recover's body. Since is a string, so that a
// bad time is an error that names it.
type recoverRequest struct {
	Since   string `json:"since"`
	Channel string `json:"channel,omitempty"`
	Status  string `json:"status,omitempty"`
}

// The recover route, added to Handler's mux, in the token's tenant's
// scope like every notification route.
func (h *api) recoverRoutes(mux *http.ServeMux) {
	mux.Handle("POST /v1/recover", h.authorized(h.postRecover))
}

// postRecover re-sends the tenant's deliveries that failed for good since
// a time (starter.Client.Recover) and answers with what it re-sent and
// skipped. Running it twice sends nothing twice, so it needs no
// Idempotency-Key.
func (h *api) postRecover(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		writeProblem(w, http.StatusUnsupportedMediaType, Problem{Detail: "Content-Type must be application/json", Field: "Content-Type"})
		return
	}
	var req recoverRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRecoverBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeProblem(w, http.StatusBadRequest, Problem{Detail: "the body is not a recover request: " + err.Error()})
		return
	}
	since, err := time.Parse(time.RFC3339, req.Since)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, Problem{Detail: fmt.Sprintf("since %q is not an RFC 3339 time such as 2026-11-26T09:00:00Z", req.Since), Field: "since"})
		return
	}
	report, err := h.client(r).Recover(r.Context(), starter.RecoverOptions{
		Since: since, Channel: onceflow.Channel(req.Channel), Status: onceflow.Status(req.Status),
	})
	var invalid *onceflow.ValidationError
	switch {
	case errors.As(err, &invalid):
		writeValidation(w, err)
		return
	case err != nil:
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, report)
}
