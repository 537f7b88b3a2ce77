package codec

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// EnvOrigins names the variable listing the Web UI origins (scheme, host and
// port, e.g. http://localhost:8233), comma-separated, whose pages may call
// the codec endpoint from the browser.
const EnvOrigins = "ONCEFLOW_CODEC_ORIGINS"

// maxBody bounds a request: the Web UI sends one event's payloads at a
// time, and Temporal refuses payloads over 2 MiB by default.
const maxBody = 8 << 20

// allowedHeaders are the request headers the Web UI sends to a codec
// server: the namespace, and its access token when configured to pass it.
var allowedHeaders = strings.Join([]string{"Authorization", "Authorization-Extras", "Content-Type", "X-Namespace"}, ", ")

// HandlerOptions configure Handler.
type HandlerOptions struct {
	// Origins are the Web UI origins allowed to call the endpoint from a
	// browser, credentials included. A request from any other origin is
	// refused; requests without an Origin (curl, the SDK's remote codec)
	// are served.
	Origins []string
	// Authorize, when set, wraps the encode and decode endpoints: the API's
	// bearer-token middleware goes here. CORS preflight requests, which
	// carry no credentials, are answered before it.
	Authorize func(http.Handler) http.Handler
	// Tenant, when set, is the tenant of an authorized request (the API
	// token's). The endpoint encodes for that tenant and decodes only its
	// payloads. Unset, every caller is the single tenant "".
	Tenant func(*http.Request) string
}

// Handler serves Temporal's remote codec protocol: POST <prefix>/encode and
// POST <prefix>/decode with a JSON {"payloads": [...]} body, as the Web UI
// and `temporal --codec-endpoint` call it. Mount it under a prefix such as
// /codec/.
//
// The endpoint works for the caller's tenant (opts.Tenant): encode seals
// for it; decode opens only its payloads, and refuses with 403, and no
// plaintext, a request holding another tenant's payload. A legacy payload
// (sealed before tenants had keys, so no one can tell whose it is) is
// decoded for the single tenant "" only: a deployment without API tokens.
func Handler(keys *Keys, opts HandlerOptions) http.Handler {
	var h http.Handler = &endpoint{codec: New(keys), tenant: opts.Tenant}
	h = limitBody(h)
	if opts.Authorize != nil {
		h = opts.Authorize(h)
	}
	return &cors{origins: opts.Origins, next: h}
}

// ErrOtherTenant is returned (wrapped) by the codec endpoint for a payload
// that is not the caller's tenant's to read.
var ErrOtherTenant = errors.New("the codec endpoint decodes only the caller's tenant's payloads")

// endpoint is the remote codec protocol for the tenant of each request.
type endpoint struct {
	codec  *Codec
	tenant func(*http.Request) string
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := path.Base(r.URL.Path)
	if r.Method != http.MethodPost || (op != "encode" && op != "decode") {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "codec: read the request: "+err.Error(), http.StatusBadRequest)
		return
	}
	var in commonpb.Payloads
	if err := protojson.Unmarshal(body, &in); err != nil {
		http.Error(w, `codec: the body is not {"payloads": [...]}: `+err.Error(), http.StatusBadRequest)
		return
	}
	c := e.codec
	if e.tenant != nil {
		c = c.ForTenant(e.tenant(r))
	}
	var out []*commonpb.Payload
	if op == "encode" {
		out, err = c.Encode(in.Payloads)
	} else {
		out, err = decodeOwn(c, in.Payloads)
	}
	switch {
	case errors.Is(err, ErrOtherTenant):
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	b, err := protojson.Marshal(&commonpb.Payloads{Payloads: out})
	if err != nil {
		http.Error(w, "codec: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// decodeOwn decodes payloads if every encrypted one is c's tenant's, and
// refuses them all otherwise. The error never names the other tenant.
func decodeOwn(c *Codec, payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	for i, p := range payloads {
		if !encrypted(p) {
			continue
		}
		tenant, scoped := payloadTenant(p)
		switch {
		case !scoped && c.tenant != "":
			return nil, fmt.Errorf("codec: payload %d was sealed before tenants had keys of their own, and may be any tenant's: %w "+
				"(legacy payloads are decoded only without API tokens; a process with %s reads them)", i+1, ErrOtherTenant, EnvKeys)
		case scoped && tenant != c.tenant:
			return nil, fmt.Errorf("codec: payload %d is another tenant's: %w", i+1, ErrOtherTenant)
		}
	}
	return c.Decode(payloads)
}

func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		next.ServeHTTP(w, r)
	})
}

// cors lets the Web UI's origins call next from the browser.
type cors struct {
	origins []string
	next    http.Handler
}

func (c *cors) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin != "" {
		if !slices.Contains(c.origins, origin) {
			http.Error(w, "origin "+origin+" may not call the codec endpoint (allow it in "+EnvOrigins+")", http.StatusForbidden)
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Set("Access-Control-Allow-Credentials", "true")
	}
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", allowedHeaders)
		w.Header().Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	c.next.ServeHTTP(w, r)
}

// ParseOrigins splits EnvOrigins's comma-separated list.
func ParseOrigins(s string) []string {
	var out []string
	for o := range strings.SplitSeq(s, ",") {
		if o = strings.TrimRight(strings.TrimSpace(o), "/"); o != "" {
			out = append(out, o)
		}
	}
	return out
}
