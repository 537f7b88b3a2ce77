package main

import (
	"net/http"

	"go.temporal.io/sdk/client"

	"github.com/onceflow/onceflow/codec"
	"github.com/onceflow/onceflow/httpapi"
)

// useCodec makes opts encrypt payloads and failure messages when
// ONCEFLOW_CODEC_KEYS is set. Every command that talks to Temporal goes
// through it (dial), so workers, the API and the CLI read each other's
// payloads.
func (a *app) useCodec(opts *client.Options) error {
	keys, err := codec.LoadKeys(a.getenv)
	if err != nil {
		return inputError{err}
	}
	if keys != nil {
		opts.DataConverter = codec.DataConverter(keys)
		opts.FailureConverter = codec.FailureConverter(keys)
	}
	return nil
}

// withCodecEndpoint serves the remote codec protocol under /codec/ beside
// api when ONCEFLOW_CODEC_KEYS is set, for the Web UI origins in
// ONCEFLOW_CODEC_ORIGINS; with tokens, to bearers of the API's tokens only,
// each for its own tenant's payloads.
func (a *app) withCodecEndpoint(api http.Handler, tokens *httpapi.Tokens) (http.Handler, error) {
	keys, err := codec.LoadKeys(a.getenv)
	if err != nil {
		return nil, inputError{err}
	}
	if keys == nil {
		return api, nil
	}
	mux := http.NewServeMux()
	mux.Handle("/", api)
	opts := codec.HandlerOptions{Origins: codec.ParseOrigins(a.getenv(codec.EnvOrigins))}
	if tokens != nil {
		opts.Authorize, opts.Tenant = tokens.Require, httpapi.RequestTenant
	}
	mux.Handle("/codec/", codec.Handler(keys, opts))
	a.logger.Info("codec endpoint enabled", "keys", keys.String(), "origins", a.getenv(codec.EnvOrigins))
	return mux, nil
}
