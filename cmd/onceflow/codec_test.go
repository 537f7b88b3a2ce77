package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/proxy"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/onceflow/onceflow/codec"
	"github.com/onceflow/onceflow/httpapi"
	"github.com/onceflow/onceflow/internal/freeport"
	"github.com/onceflow/onceflow/internal/testenv"
)

func TestBadCodecKeysAreAnInputErrorNamingTheEntry(t *testing.T) {
	secret := "c2l4dGVlbiBieXRlIGtleQ=="
	for _, cmd := range [][]string{{"status", "k"}, {"worker"}, {"api"}, {"send", "--key", "k", "--body", "b", "--channel", "webhook", "--to", "https://example.com/hook"}} {
		r := run(context.Background(), mapEnv{codec.EnvKeys: "k1:" + secret}, cmd...)
		assert.Equal(t, exitInput, r.code, cmd)
		assert.Contains(t, r.stderr, `ONCEFLOW_CODEC_KEYS entry 1 (key ID "k1"): the key is 16 bytes`, cmd)
		assert.NotContains(t, r.stderr, secret)
	}
}

// TestEncryptedCLIAndAPI: with ONCEFLOW_CODEC_KEYS set, `onceflow send`,
// `status` and the worker read each other's encrypted payloads, Temporal
// holds none of them in clear, and `onceflow api` decodes them on
// /codec/decode for the Web UI's origin.
func TestEncryptedCLIAndAPI(t *testing.T) {
	const origin = "http://localhost:8233"
	env := cliEnvWith(t, mapEnv{codec.EnvKeys: testenv.CodecKeys, codec.EnvOrigins: origin})
	rcv := testenv.NewReceiver(t)
	ctx := context.Background()

	r := run(ctx, env, "send", "--key", "cli-codec-1", "--channel", "webhook", "--to", rcv.URL+"/inbox/quimby",
		"--subject", "Parcel for Mrs Quimby", "--body", "At 12 Acacia Avenue", "--wait")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "delivered")
	r = run(ctx, env, "status", "cli-codec-1")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "/inbox/quimby", "status decrypts the result")

	raw, err := client.Dial(client.Options{HostPort: env["TEMPORAL_ADDRESS"], Namespace: env["TEMPORAL_NAMESPACE"]})
	require.NoError(t, err)
	defer raw.Close()
	it := raw.GetWorkflowHistory(ctx, "notification/cli-codec-1", "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	first, err := it.Next()
	require.NoError(t, err)
	input := first.GetWorkflowExecutionStartedEventAttributes().GetInput()
	require.Equal(t, codec.Encoding, string(input.Payloads[0].Metadata["encoding"]))
	assert.NotContains(t, string(input.Payloads[0].Data), "Acacia")

	addr := startAPI(t, env)

	body, err := protojson.Marshal(input)
	require.NoError(t, err)
	var resp *http.Response
	require.Eventually(t, func() bool {
		req, _ := http.NewRequest("POST", "http://"+addr+"/codec/decode", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Namespace", env["TEMPORAL_NAMESPACE"])
		req.Header.Set("Origin", origin)
		resp, err = http.DefaultClient.Do(req)
		return err == nil
	}, 10*time.Second, 50*time.Millisecond)
	out, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	assert.Equal(t, origin, resp.Header.Get("Access-Control-Allow-Origin"))
	var decoded commonpb.Payloads
	require.NoError(t, protojson.Unmarshal(out, &decoded))
	assert.True(t, strings.Contains(string(decoded.Payloads[0].Data), "At 12 Acacia Avenue"))
}

// TestCodecEndpointServesEachTenantItsOwnPayloads: with API tokens, a
// notification that acme starts through the API has every payload of its
// history (input, activities' inputs and results, the memo, the rejected
// delivery's failure) sealed for acme, and the codec endpoint decodes
// them for acme's token only: a payload copied out of acme's history is
// refused to globex's.
func TestCodecEndpointServesEachTenantItsOwnPayloads(t *testing.T) {
	const acmeToken, globexToken = "acme-0123456789abcdef0123456789abcdef", "globex-0123456789abcdef0123456789abcd"
	env := cliEnvWith(t, mapEnv{codec.EnvKeys: testenv.CodecKeys})
	tokensFile := filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(tokensFile, []byte(httpapi.HashLine("acme", acmeToken)+"\n"+httpapi.HashLine("globex", globexToken)+"\n"), 0o600))
	addr := startAPI(t, env.with(httpapi.EnvTokensFile, tokensFile))
	do := func(method, path, token, body string, header ...string) (int, string) {
		req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode, string(b)
	}

	ok, refuses := testenv.NewReceiver(t), testenv.NewReceiver(t, testenv.Statuses(400))
	notification := `{"subject":"Parcel for Mrs Quimby","body":"At 12 Acacia Avenue","deliveries":[` +
		`{"channel":"webhook","to":"` + ok.URL + `/inbox/quimby"},{"channel":"webhook","to":"` + refuses.URL + `/inbox/quimby-rejects"}]}`
	require.Eventually(t, func() bool {
		code, _ := do("GET", "/healthz", acmeToken, "")
		return code == http.StatusOK
	}, 10*time.Second, 50*time.Millisecond)
	code, body := do("POST", "/v1/notifications", acmeToken, notification, "Idempotency-Key", `"tenant-codec-1"`)
	require.Equal(t, http.StatusAccepted, code, body)
	require.Eventually(t, func() bool {
		_, body := do("GET", "/v1/notifications/tenant-codec-1", acmeToken, "")
		return strings.Contains(body, `"execution":"completed"`)
	}, 30*time.Second, 100*time.Millisecond)

	raw, err := client.Dial(client.Options{HostPort: env["TEMPORAL_ADDRESS"], Namespace: env["TEMPORAL_NAMESPACE"]})
	require.NoError(t, err)
	defer raw.Close()
	h := testenv.History(t, raw, "notification/acme@tenant-codec-1", "")
	sealed := 0
	require.NoError(t, proxy.VisitPayloads(context.Background(), h, proxy.VisitPayloadsOptions{
		SkipSearchAttributes: true,
		Visitor: func(_ *proxy.VisitPayloadsContext, ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
			for _, p := range ps {
				assert.Equal(t, codec.Encoding, string(p.Metadata["encoding"]), "every payload is encrypted")
				assert.Equal(t, "acme", string(p.Metadata[codec.MetadataTenant]), "every payload is sealed for acme")
				sealed++
			}
			return ps, nil
		},
	}))
	assert.Greater(t, sealed, 6, "the input, activities' inputs and results, the failure, the result")
	var failure bool
	for _, e := range h.Events {
		if f := e.GetActivityTaskFailedEventAttributes().GetFailure(); f != nil && f.GetEncodedAttributes() != nil {
			failure = true
			assert.Equal(t, "acme", string(f.GetEncodedAttributes().Metadata[codec.MetadataTenant]))
		}
	}
	assert.True(t, failure, "the rejected delivery's failure is in the history, encrypted")

	input, err := protojson.Marshal(h.Events[0].GetWorkflowExecutionStartedEventAttributes().GetInput())
	require.NoError(t, err)
	code, body = do("POST", "/codec/decode", globexToken, string(input))
	assert.Equal(t, http.StatusForbidden, code, body)
	assert.Contains(t, body, "another tenant's")
	assert.NotContains(t, body, "acme")
	assert.NotContains(t, body, base64.StdEncoding.EncodeToString([]byte(`{"key":"tenant-codec-1"`))[:16])
	code, body = do("POST", "/codec/decode", acmeToken, string(input))
	require.Equal(t, http.StatusOK, code, body)
	var decoded commonpb.Payloads
	require.NoError(t, protojson.Unmarshal([]byte(body), &decoded))
	assert.Contains(t, string(decoded.Payloads[0].Data), "At 12 Acacia Avenue")
}

// startAPI runs `onceflow api` with env on a free loopback port until the
// test ends, and returns its address.
func startAPI(t *testing.T, env mapEnv) string {
	t.Helper()
	port, err := freeport.Get()
	require.NoError(t, err)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan result, 1)
	go func() { done <- run(ctx, env.with(EnvAPIAddr, addr), "api") }()
	t.Cleanup(func() {
		stop()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("api did not stop")
		}
	})
	return addr
}
