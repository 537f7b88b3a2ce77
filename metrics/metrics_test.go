package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/metrics"
)

func scrape(t *testing.T, r *metrics.Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	return rec.Body.String()
}

func TestOnceflowMetricsKeepOnlyTheirDeclaredLabels(t *testing.T) {
	r := metrics.New()
	// The SDK adds its own tags, and a careless caller might add a
	// recipient: neither may become a label.
	h := r.SDKHandler().WithTags(map[string]string{"namespace": "default", "workflow_type": "NotificationWorkflow", "to": "alice@example.com"})
	metrics.Delivery(h, onceflow.Webhook, onceflow.Delivered)
	metrics.Delivery(h, onceflow.Webhook, onceflow.Delivered)
	metrics.ProviderRequest(h, onceflow.Email, metrics.OutcomeMaybeSent, 1500*time.Millisecond)
	metrics.DedupOperation(h, metrics.OpClaim, time.Millisecond)
	metrics.RateLimitWait(h, onceflow.SMS, 200*time.Millisecond)
	metrics.RateLimitDeferral(h, onceflow.SMS)
	metrics.AmbiguousClaim(h, onceflow.Push)

	out := scrape(t, r)
	assert.NotContains(t, out, "alice@example.com")
	assert.NotContains(t, out, `onceflow_deliveries_total{namespace`)
	assert.Contains(t, out, `onceflow_deliveries_total{channel="webhook",status="delivered"} 2`)
	assert.Contains(t, out, `onceflow_deliveries_total{channel="sms",status="ambiguous"} 0`, "every channel's series exists from the start")
	assert.Contains(t, out, `onceflow_provider_request_duration_seconds_bucket{channel="email",outcome="maybe_sent",le="2.5"} 1`)
	assert.Contains(t, out, `onceflow_provider_request_duration_seconds_bucket{channel="email",outcome="maybe_sent",le="1"} 0`)
	assert.Contains(t, out, `onceflow_dedup_operation_duration_seconds_count{op="claim"} 1`)
	assert.Contains(t, out, `onceflow_ratelimit_wait_duration_seconds_count{channel="sms"} 1`)
	assert.Contains(t, out, `onceflow_ratelimit_deferrals_total{channel="sms"} 1`)
	assert.Contains(t, out, `onceflow_ambiguous_claims_total{channel="push"} 1`)
	testenv.Promtool(t, []byte(out), "check", "metrics")
}

func TestSDKMetricsAreExportedWithPrometheusNames(t *testing.T) {
	r := metrics.New()
	h := r.SDKHandler().WithTags(map[string]string{"namespace": "default", "operation": "StartWorkflowExecution"})
	h.Counter("temporal_request").Inc(3)
	h.Counter("temporal_request").Inc(-1) // a counter never goes down
	h.Timer("temporal_request_latency").Record(20 * time.Millisecond)
	h.Gauge("temporal_worker_task_slots_available").Update(7)
	// Another tag set for the same metric keeps the first labels.
	r.SDKHandler().WithTags(map[string]string{"task-queue": "q"}).Counter("temporal_request").Inc(1)

	out := scrape(t, r)
	assert.Contains(t, out, `temporal_request_total{namespace="default",operation="StartWorkflowExecution"} 3`)
	assert.Contains(t, out, `temporal_request_total{namespace="",operation=""} 1`)
	assert.Contains(t, out, `temporal_request_latency_seconds_count{namespace="default",operation="StartWorkflowExecution"} 1`)
	assert.Contains(t, out, `temporal_worker_task_slots_available{namespace="default",operation="StartWorkflowExecution"} 7`)
	testenv.Promtool(t, []byte(out), "check", "metrics")
}

func TestAPIRequestsAreLabelledByRoutePatternNotPath(t *testing.T) {
	r := metrics.New()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/notifications/{key...}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) })
	mux.HandleFunc("POST /v1/notifications", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "{}") })
	srv := httptest.NewServer(r.Instrument(mux))
	defer srv.Close()
	for _, req := range []struct{ method, path string }{
		{"GET", "/v1/notifications/order-1234-alice@example.com"},
		{"POST", "/v1/notifications"},
		{"GET", "/secret-token-in-path"},
	} {
		hreq, err := http.NewRequest(req.method, srv.URL+req.path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(hreq)
		require.NoError(t, err)
		_ = resp.Body.Close()
	}
	out := scrape(t, r)
	assert.NotContains(t, out, "alice@example.com")
	assert.NotContains(t, out, "secret-token")
	assert.Contains(t, out, `onceflow_api_requests_total{code="404",route="GET /v1/notifications/{key...}"} 1`)
	assert.Contains(t, out, `onceflow_api_requests_total{code="200",route="POST /v1/notifications"} 1`)
	assert.Contains(t, out, `onceflow_api_requests_total{code="404",route="unmatched"} 1`)
	assert.True(t, strings.Contains(out, `onceflow_api_request_duration_seconds_count{route="POST /v1/notifications"} 1`))
	testenv.Promtool(t, []byte(out), "check", "metrics")
}

func TestAnSDKMetricWhoseNameIsTakenIsDroppedNotFatal(t *testing.T) {
	r := metrics.New()
	h := r.SDKHandler()
	// A gauge under a counter's name: Prometheus refuses to register it.
	h.Gauge("onceflow_deliveries_total").Update(5)
	h.Gauge("go_goroutines").Update(-1)
	out := scrape(t, r)
	assert.NotContains(t, out, "onceflow_deliveries_total 5")
	assert.NotContains(t, out, "go_goroutines -1")
	testenv.Promtool(t, []byte(out), "check", "metrics")
}
