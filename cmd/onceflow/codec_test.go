package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/onceflow/onceflow/codec"
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

	port, err := freeport.Get()
	require.NoError(t, err)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	apiCtx, stop := context.WithCancel(ctx)
	done := make(chan result, 1)
	apiEnv := env.with("ONCEFLOW_API_ADDR", addr)
	go func() { done <- run(apiCtx, apiEnv, "api") }()
	defer func() {
		stop()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("api did not stop")
		}
	}()

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
