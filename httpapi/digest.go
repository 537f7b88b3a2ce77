package httpapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/digest"
)

// WithDigests serves the digest route from c, in each request's tenant.
// Without it the route answers 503.
func WithDigests(c *digest.Client) Option { return func(h *api) { h.digests = c } }

// The digest route, added to Handler's mux:
//
//	GET /v1/subscribers/{id}/digests/{key}   the digest's open window
//
// Notifications join digests through POST /v1/notifications, with a
// "digest" field; each one's status then names its digest.
func (h *api) digestRoutes(mux *http.ServeMux) {
	mux.Handle("GET /v1/subscribers/{id}/digests/{key}", h.authorized(h.getDigest))
}

func (h *api) getDigest(w http.ResponseWriter, r *http.Request) {
	if h.digests == nil {
		writeProblem(w, http.StatusServiceUnavailable, Problem{Detail: "this API serves no digests"})
		return
	}
	st, err := h.digests.ForTenant(tenantOf(r.Context())).Status(r.Context(), r.PathValue("id"), r.PathValue("key"))
	var (
		invalid  *onceflow.ValidationError
		notFound *onceflow.NotFoundError
	)
	switch {
	case errors.As(err, &invalid):
		writeValidation(w, err)
	case errors.As(err, &notFound):
		writeProblem(w, http.StatusNotFound, Problem{Detail: err.Error()})
	case err != nil:
		h.fail(w, r, err)
	default:
		writeJSON(w, http.StatusOK, st)
	}
}

// eventNotCancellable says why a notification that joined a digest is not
// cancelled: its digest sends what it gathered (see workflows'
// joinDigest).
func eventNotCancellable(key string, d *onceflow.DigestRef) string {
	return fmt.Sprintf("notification %q has joined digest %q of subscriber %s, which sends it; an event cannot be withdrawn from its digest", key, d.Key, d.Subscriber)
}
