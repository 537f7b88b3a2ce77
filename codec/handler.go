package codec

import (
	"net/http"
	"slices"
	"strings"

	"go.temporal.io/sdk/converter"
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
}

// Handler serves Temporal's remote codec protocol: POST <prefix>/encode and
// POST <prefix>/decode with a JSON {"payloads": [...]} body, as the Web UI
// and `temporal --codec-endpoint` call it. Mount it under a prefix such as
// /codec/.
func Handler(keys *Keys, opts HandlerOptions) http.Handler {
	var h http.Handler = converter.NewPayloadCodecHTTPHandler(New(keys))
	h = limitBody(h)
	if opts.Authorize != nil {
		h = opts.Authorize(h)
	}
	return &cors{origins: opts.Origins, next: h}
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
