package devstack

import (
	"fmt"
	"net/http"

	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	"go.temporal.io/sdk/client"

	"github.com/onceflow/onceflow/codec"
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
// without keys. The dev stack has no API tokens: like the rest of the
// stack, the endpoint answers whoever reaches it on loopback, and browsers
// only from the Web UI's pages.
func codecHandler(keys *codec.Keys, uiPort int) http.Handler {
	if keys == nil {
		return nil
	}
	return codec.Handler(keys, codec.HandlerOptions{Origins: []string{
		fmt.Sprintf("http://127.0.0.1:%d", uiPort),
		fmt.Sprintf("http://localhost:%d", uiPort),
	}})
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
			"the codec endpoint of onceflow dev's API could not decode them.",
	}
}
