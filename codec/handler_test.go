package codec_test

import (
	"encoding/base64"
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
	"google.golang.org/protobuf/proto"

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

// tenantServer serves the codec endpoint to the bearers of two tenants'
// tokens, as the API wires it: "Bearer acme-token" is acme,
// "Bearer globex-token" globex.
func tenantServer(t *testing.T, k *codec.Keys) *httptest.Server {
	tenants := map[string]string{"Bearer acme-token": "acme", "Bearer globex-token": "globex"}
	srv := httptest.NewServer(codec.Handler(k, codec.HandlerOptions{
		Authorize: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if _, ok := tenants[r.Header.Get("Authorization")]; !ok {
					http.Error(w, "unauthorized", http.StatusUnauthorized)
					return
				}
				next.ServeHTTP(w, r)
			})
		},
		Tenant: func(r *http.Request) string { return tenants[r.Header.Get("Authorization")] },
	}))
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, srv *httptest.Server, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode, string(b)
}

func TestEndpointDecodesOnlyTheCallersTenantsPayloads(t *testing.T) {
	entry := newKey(t, "k1")
	k := keys(t, entry)
	srv := tenantServer(t, k)
	acme, globex := sealFor(t, k, "acme"), sealFor(t, k, "globex")

	status, body := post(t, srv, "/codec/decode", "acme-token", payloadsJSON(t, acme))
	require.Equal(t, http.StatusOK, status, body)
	var own commonpb.Payloads
	require.NoError(t, protojson.Unmarshal([]byte(body), &own))
	assert.Contains(t, string(own.Payloads[0].Data), "12 Acacia Avenue", "acme reads its own")

	for name, batch := range map[string][]*commonpb.Payload{
		"acme's payload":             {acme},
		"acme's beside globex's own": {globex, acme},
		"acme's relabelled as globex's": {func() *commonpb.Payload {
			p := proto.Clone(acme).(*commonpb.Payload)
			p.Metadata[codec.MetadataTenant] = []byte("globex")
			return p
		}()},
	} {
		t.Run("globex is refused "+name, func(t *testing.T) {
			status, body := post(t, srv, "/codec/decode", "globex-token", payloadsJSON(t, batch...))
			assert.Contains(t, []int{http.StatusForbidden, http.StatusBadRequest}, status, body)
			assert.NotContains(t, body, "acme", "the refusal does not name the other tenant")
			for _, s := range []string{"Acacia", "Quimby", "order-1"} {
				assert.NotContains(t, body, s)
				assert.NotContains(t, body, base64.StdEncoding.EncodeToString([]byte(s)))
			}
		})
	}
	status, body = post(t, srv, "/codec/decode", "globex-token", payloadsJSON(t, acme))
	assert.Equal(t, http.StatusForbidden, status)
	assert.Contains(t, body, "another tenant's")

	// Encode seals for the caller's tenant: globex's own payload, which
	// acme cannot read back.
	plain, err := converter.GetDefaultDataConverter().ToPayload("globex's secret")
	require.NoError(t, err)
	status, body = post(t, srv, "/codec/encode", "globex-token", payloadsJSON(t, plain))
	require.Equal(t, http.StatusOK, status, body)
	var sealed commonpb.Payloads
	require.NoError(t, protojson.Unmarshal([]byte(body), &sealed))
	assert.Equal(t, "globex", string(sealed.Payloads[0].Metadata[codec.MetadataTenant]))
	status, _ = post(t, srv, "/codec/decode", "acme-token", body)
	assert.Equal(t, http.StatusForbidden, status)
	status, body = post(t, srv, "/codec/decode", "globex-token", body)
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, base64.StdEncoding.EncodeToString([]byte(`"globex's secret"`)))

	status, _ = post(t, srv, "/codec/decode", "", payloadsJSON(t, acme))
	assert.Equal(t, http.StatusUnauthorized, status)
}

// A legacy payload cannot say whose it is: with tenants' tokens it is
// refused, to every tenant; a deployment without tokens (the single
// tenant, the dev stack) decodes it as before.
func TestEndpointDecodesLegacyPayloadsForTheSingleTenantOnly(t *testing.T) {
	entry := newKey(t, "k1")
	k := keys(t, entry)
	legacy := legacySeal(t, entry, &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"Left at 12 Acacia Avenue"`)})

	srv := tenantServer(t, k)
	for _, token := range []string{"acme-token", "globex-token"} {
		status, body := post(t, srv, "/codec/decode", token, payloadsJSON(t, legacy))
		assert.Equal(t, http.StatusForbidden, status, token)
		assert.Contains(t, body, "sealed before tenants had keys")
		assert.NotContains(t, body, base64.StdEncoding.EncodeToString([]byte(`"Left at 12`)))
	}

	single := httptest.NewServer(codec.Handler(k, codec.HandlerOptions{}))
	defer single.Close()
	status, body := post(t, single, "/codec/decode", "", payloadsJSON(t, legacy, sealFor(t, k, "")))
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, base64.StdEncoding.EncodeToString([]byte(`"Left at 12 Acacia Avenue"`)))
	status, _ = post(t, single, "/codec/decode", "", payloadsJSON(t, sealFor(t, k, "acme")))
	assert.Equal(t, http.StatusForbidden, status, "the single tenant does not read a named tenant's payloads")
}
