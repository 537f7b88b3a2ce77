package main

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/internal/freeport"
	"github.com/onceflow/onceflow/internal/testenv"
)

func loopbackAddr(t *testing.T) string {
	port, err := freeport.Get()
	require.NoError(t, err)
	return "127.0.0.1:" + strconv.Itoa(port)
}

func get(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestWorkerAndAPIServeMetricsOnTheirAddress(t *testing.T) {
	workerMetrics, apiMetrics, apiAddr := loopbackAddr(t), loopbackAddr(t), loopbackAddr(t)
	env := cliEnvWith(t, mapEnv{EnvMetricsAddr: workerMetrics}).with(EnvMetricsAddr, apiMetrics, EnvAPIAddr, apiAddr)
	rcv := testenv.NewReceiver(t)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan result, 1)
	go func() { done <- run(ctx, env, "api") }()
	defer func() {
		stop()
		select {
		case r := <-done:
			assert.Equal(t, exitOK, r.code, r.stderr)
		case <-time.After(15 * time.Second):
			t.Error("api did not stop")
		}
	}()

	var resp *http.Response
	require.Eventually(t, func() bool {
		req, _ := http.NewRequest("POST", "http://"+apiAddr+"/v1/notifications",
			strings.NewReader(`{"body":"hi","deliveries":[{"channel":"webhook","to":"`+rcv.URL+`"}]}`))
		req.Header.Set("Idempotency-Key", `"metrics-cli-1"`)
		req.Header.Set("Content-Type", "application/json")
		var err error
		resp, err = http.DefaultClient.Do(req)
		return err == nil
	}, 10*time.Second, 50*time.Millisecond)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)

	var fromWorker string
	require.Eventually(t, func() bool {
		fromWorker = get("http://" + workerMetrics + "/metrics")
		// The SDK counts the workflow's completion after the workflow
		// counted its delivery.
		return strings.Contains(fromWorker, `onceflow_deliveries_total{channel="webhook",status="delivered"} 1`) &&
			strings.Contains(fromWorker, "temporal_workflow_completed_total")
	}, 30*time.Second, 100*time.Millisecond, "the worker counts the delivery, and the SDK the workflow's completion:\n%s", fromWorker)
	assert.Contains(t, fromWorker, `onceflow_provider_request_duration_seconds_count{channel="webhook",outcome="ok"} 1`)
	testenv.Promtool(t, []byte(fromWorker), "check", "metrics")

	fromAPI := get("http://" + apiMetrics + "/metrics")
	assert.Contains(t, fromAPI, `onceflow_api_requests_total{code="202",route="POST /v1/notifications"} 1`)
	assert.Contains(t, fromAPI, "temporal_request_total", "the API's client reports the SDK's metrics")
	testenv.Promtool(t, []byte(fromAPI), "check", "metrics")
	for _, text := range []string{fromWorker, fromAPI} {
		assert.NotContains(t, text, "metrics-cli-1", "no key in a label")
		assert.NotContains(t, text, rcv.URL, "no recipient in a label")
	}
}

func TestBadMetricsAddrIsAnInputErrorNamingTheVariable(t *testing.T) {
	for _, cmd := range []string{"worker", "api"} {
		r := run(context.Background(), mapEnv{EnvMetricsAddr: "127.0.0.1:notaport", "ONCEFLOW_WEBHOOK_SECRET": testenv.WebhookSecret}, cmd)
		assert.Equal(t, exitInput, r.code, "%s: %s", cmd, r.stderr)
		assert.Contains(t, r.stderr, EnvMetricsAddr, cmd)
	}
}
