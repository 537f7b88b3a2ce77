package httpapi

import (
	"net/http"
	"time"
)

// Timeouts bound how long one connection may hold the API's server, so
// that a client that sends slowly, or not at all (slowloris), is cut off
// instead of holding a connection and a goroutine for ever.
type Timeouts struct {
	// ReadHeader bounds reading a request's headers.
	ReadHeader time.Duration
	// Read bounds reading a whole request, body included.
	Read time.Duration
	// Write bounds the time from the end of the request's headers to the
	// end of the answer: the handler's work and the write.
	Write time.Duration
	// Idle bounds the wait for the next request on a kept-alive
	// connection.
	Idle time.Duration
}

// DefaultTimeouts are the API server's timeouts in `onceflow api` and
// `onceflow dev`:
//
//   - headers in 10s: a few hundred bytes, which any client sends at once;
//   - the whole request in 30s: the largest body accepted is 1 MiB, which
//     needs only about 35 KB/s;
//   - the answer within 60s of the headers: no handler long-polls (Wait is
//     not exposed over HTTP); the slowest legitimate request is a POST that
//     reads the dedup ledger and starts a workflow, or a GET whose status
//     query waits for a worker, each bounded by Temporal's own RPC
//     deadlines well under a minute; a codec call decodes at most a few
//     MiB in memory;
//   - 120s idle between requests, as net/http's own HTTP/2 default.
func DefaultTimeouts() Timeouts {
	return Timeouts{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Write: 60 * time.Second, Idle: 120 * time.Second}
}

// maxHeaderBytes bounds a request's headers: a bearer token and an
// Idempotency-Key fit many times over.
const maxHeaderBytes = 64 << 10

// NewServer returns the HTTP server for the API's handler h, with the
// timeouts t.
func NewServer(h http.Handler, t Timeouts) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    maxHeaderBytes,
	}
}
