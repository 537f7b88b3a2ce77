package codec_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/onceflow/onceflow/codec"
)

const uiOrigin = "http://127.0.0.1:8233"

// do sends a codec request as the Web UI's browser would.
func do(t *testing.T, srv *httptest.Server, method, path, origin, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", "default")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp, string(b)
}

func payloadsJSON(t *testing.T, ps ...*commonpb.Payload) string {
	b, err := protojson.Marshal(&commonpb.Payloads{Payloads: ps})
	require.NoError(t, err)
	return string(b)
}

func TestHandlerDecodesWhatTheCodecEncoded(t *testing.T) {
	k := keys(t, newKey(t, "k1"))
	mux := http.NewServeMux()
	mux.Handle("/codec/", codec.Handler(k, codec.HandlerOptions{Origins: []string{uiOrigin}}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	encrypted, err := codec.DataConverter(k).ToPayload(secretNotification)
	require.NoError(t, err)
	resp, body := do(t, srv, "POST", "/codec/decode?preserveStorageRefs=true", uiOrigin, payloadsJSON(t, encrypted))
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, uiOrigin, resp.Header.Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "true", resp.Header.Get("Access-Control-Allow-Credentials"))
	var decoded commonpb.Payloads
	require.NoError(t, protojson.Unmarshal([]byte(body), &decoded))
	require.Len(t, decoded.Payloads, 1)
	assert.Equal(t, "json/plain", string(decoded.Payloads[0].Metadata[converter.MetadataEncoding]))
	assert.Contains(t, string(decoded.Payloads[0].Data), "12 Acacia Avenue")

	// Encode, then decode with the codec itself: the endpoint encrypts.
	resp, body = do(t, srv, "POST", "/codec/encode", "", payloadsJSON(t, decoded.Payloads...))
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.NotContains(t, body, "Acacia")
	var reencoded commonpb.Payloads
	require.NoError(t, protojson.Unmarshal([]byte(body), &reencoded))
	plain, err := codec.New(k).Decode(reencoded.Payloads)
	require.NoError(t, err)
	assert.Contains(t, string(plain[0].Data), "12 Acacia Avenue")

	// A payload under a key the server does not have is a 400 naming it.
	other, err := codec.DataConverter(keys(t, newKey(t, "elsewhere"))).ToPayload("x")
	require.NoError(t, err)
	resp, body = do(t, srv, "POST", "/codec/decode", uiOrigin, payloadsJSON(t, other))
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, body, `"elsewhere"`)
}

func TestHandlerCORS(t *testing.T) {
	authorized := 0
	h := codec.Handler(keys(t, newKey(t, "k1")), codec.HandlerOptions{
		Origins: []string{uiOrigin},
		Authorize: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				authorized++
				if r.Header.Get("Authorization") != "Bearer good" {
					http.Error(w, "unauthorized", http.StatusUnauthorized)
					return
				}
				next.ServeHTTP(w, r)
			})
		},
	})
	srv := httptest.NewServer(h)
	defer srv.Close()

	req, err := http.NewRequest("OPTIONS", srv.URL+"/codec/decode", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", uiOrigin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,x-namespace")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Equal(t, uiOrigin, resp.Header.Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "true", resp.Header.Get("Access-Control-Allow-Credentials"))
	allowed := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
	for _, h := range []string{"authorization", "content-type", "x-namespace"} {
		assert.Contains(t, allowed, h)
	}
	assert.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "POST")
	assert.Zero(t, authorized, "a preflight carries no credentials and is answered before authorization")

	resp, _ = do(t, srv, "POST", "/codec/decode", uiOrigin, payloadsJSON(t))
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "encode and decode go through Authorize")
	assert.Equal(t, 1, authorized)

	resp, body := do(t, srv, "POST", "/codec/decode", "http://evil.example", payloadsJSON(t))
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Contains(t, body, codec.EnvOrigins)
	assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
}

func TestParseOrigins(t *testing.T) {
	assert.Equal(t, []string{"http://localhost:8233", "https://ui.example"}, codec.ParseOrigins(" http://localhost:8233/, https://ui.example ,"))
	assert.Empty(t, codec.ParseOrigins(""))
}
