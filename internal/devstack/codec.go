package devstack

import (
	"fmt"
	"net/http"

	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	"go.temporal.io/sdk/client"

	"github.com/onceflow/onceflow/codec"
	"github.com/onceflow/onceflow/httpapi"
)

// withCodec makes opts encrypt payloads and failure messages with keys, if
// any.
func withCodec(opts client.Options, keys *codec.Keys) client.Options {
	if keys != nil {
		opts.DataConverter = codec.DataConverter(keys)
		opts.FailureConverter = codec.FailureConverter(keys)
	}
	return opts
}

// codecHandler is the API's codec endpoint for the Web UI on uiPort, or nil
// without keys. Without API tokens, like the rest of the stack, the
// endpoint answers whoever reaches it on loopback, and browsers only from
// the Web UI's pages, as the single tenant; with tokens, only their
// bearers, each for its own tenant's payloads.
func codecHandler(keys *codec.Keys, uiPort int, tokens *httpapi.Tokens) http.Handler {
	if keys == nil {
		return nil
	}
	opts := codec.HandlerOptions{Origins: []string{
		fmt.Sprintf("http://127.0.0.1:%d", uiPort),
		fmt.Sprintf("http://localhost:%d", uiPort),
	}}
	if tokens != nil {
		opts.Authorize, opts.Tenant = tokens.Require, httpapi.RequestTenant
	}
	return codec.Handler(keys, opts)
}

// uiCodec points the Web UI at the API's codec endpoint, which the browser
// calls to show decrypted payloads.
func (s *Stack) uiCodec() uiconfig.Codec {
	if s.codec == nil || s.APIURL == "" {
		return uiconfig.Codec{}
	}
	return uiconfig.Codec{
		Endpoint:           s.APIURL + "/codec",
		IncludeCredentials: true,
		DefaultErrorMessage: "Payloads are encrypted with ONCEFLOW_CODEC_KEYS; " +
			"the codec endpoint of onceflow dev's API could not decode them " +
			"(it decodes a tenant's payloads only for that tenant's API token).",
	}
}
