// Package openapitest holds the HTTP API to its OpenAPI document in tests:
// a RoundTripper that checks every exchange a test makes against the
// document (kin-openapi), so that an undeclared status, a missing required
// field or a wrong type fails the request that produced it.
package openapitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Load parses and validates the OpenAPI document doc.
func Load(doc []byte) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	t, err := loader.LoadFromData(doc)
	if err != nil {
		return nil, fmt.Errorf("load the OpenAPI document: %w", err)
	}
	if err := t.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("the OpenAPI document is not valid: %w", err)
	}
	return t, nil
}

// Transport is a RoundTripper that sends through next and checks each
// exchange against the document:
//
//   - the route must be in the document, unless the answer is 404 or 405
//     (a path or method the API does not serve) or the request is a CORS
//     preflight (OPTIONS, which OpenAPI does not describe);
//   - a request the document calls invalid must be answered with a 4xx
//     (tests send bad input on purpose, and that is the answer it gets);
//   - the response's status must be declared for the operation, and its
//     headers and body must match what is declared for it. An event
//     stream's body is left to the caller to read, unchecked.
//
// A violation is returned as the request's error.
type Transport struct {
	router routers.Router
	next   http.RoundTripper
}

// NewTransport checks exchanges against doc, sending through next
// (http.DefaultTransport when nil).
func NewTransport(doc []byte, next http.RoundTripper) (*Transport, error) {
	t, err := Load(doc)
	if err != nil {
		return nil, err
	}
	// The document's servers say where the API is deployed; tests serve it
	// on loopback ports, so the router matches paths on any host.
	t.Servers = nil
	router, err := gorillamux.NewRouter(t)
	if err != nil {
		return nil, fmt.Errorf("route the OpenAPI document: %w", err)
	}
	if next == nil {
		next = http.DefaultTransport
	}
	return &Transport{router: router, next: next}, nil
}

// CheckDefaultClient makes http.DefaultClient (and so http.Get and
// http.Post) check every API exchange against doc: a TestMain's first
// line, in each package whose tests call the API over HTTP.
func CheckDefaultClient(doc []byte) {
	t, err := NewTransport(doc, http.DefaultTransport)
	if err != nil {
		fmt.Fprintln(os.Stderr, "openapitest:", err)
		os.Exit(1)
	}
	http.DefaultClient.Transport = t
}

// inAPI reports whether path is the HTTP API's, which the document
// describes: /healthz and everything under /v1/. The processes that serve
// the API serve other things beside it (/metrics, the codec server, the
// dev stack's demo receiver), which pass unchecked.
func inAPI(path string) bool { return path == "/healthz" || strings.HasPrefix(path, "/v1/") }

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !inAPI(req.URL.Path) {
		return t.next.RoundTrip(req)
	}
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	route, params, routeErr := t.router.FindRoute(req)
	var requestErr error
	if routeErr == nil {
		check := req.Clone(context.Background())
		check.Body = io.NopCloser(bytes.NewReader(reqBody))
		requestErr = openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
			Request: check, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		})
	}

	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	what := req.Method + " " + req.URL.Path
	switch {
	case routeErr != nil && (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed || req.Method == http.MethodOptions):
		return resp, nil
	case routeErr != nil:
		_ = resp.Body.Close()
		return nil, fmt.Errorf("openapi: %s answered %d but the document has no such operation: %w", what, resp.StatusCode, routeErr)
	case requestErr != nil && (resp.StatusCode < 400 || resp.StatusCode > 499):
		_ = resp.Body.Close()
		return nil, fmt.Errorf("openapi: %s is invalid by the document (%v) but was answered %d", what, requestErr, resp.StatusCode)
	}

	opts := &openapi3filter.Options{IncludeResponseStatus: true}
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mediaType == "text/event-stream" {
		opts.ExcludeResponseBody = true
	}
	var respBody []byte
	if !opts.ExcludeResponseBody {
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return nil, err
		}
		respBody = b
		resp.Body = io.NopCloser(bytes.NewReader(b))
	}
	check := req.Clone(context.Background())
	check.Body = io.NopCloser(bytes.NewReader(reqBody))
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: check, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                opts,
	}
	in.SetBodyBytes(respBody)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		if opts.ExcludeResponseBody {
			_ = resp.Body.Close()
		}
		var re *openapi3filter.ResponseError
		if errors.As(err, &re) {
			err = fmt.Errorf("%s: %w", re.Reason, re.Err)
		}
		return nil, fmt.Errorf("openapi: %s answered %d, which the document does not allow: %v; body: %.300s", what, resp.StatusCode, err, respBody)
	}
	return resp, nil
}
