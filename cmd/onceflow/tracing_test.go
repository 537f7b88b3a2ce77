package main

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/onceflow/onceflow/internal/testenv"
)

// collector is an OTLP/HTTP trace receiver: it keeps the name, trace ID
// and service name of every span exported to it.
type collector struct {
	mu    sync.Mutex
	spans []exported
}

type exported struct{ name, traceID, service string }

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if err != nil || r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans = append(c.spans, exported{s.GetName(), hex.EncodeToString(s.GetTraceId()), service})
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

func (c *collector) names(traceID string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var names []string
	for _, s := range c.spans {
		if s.traceID == traceID {
			names = append(names, s.name)
		}
	}
	return names
}

// With OTEL_EXPORTER_OTLP_ENDPOINT set, `onceflow send` and `onceflow
// worker` export one trace per notification to the collector: the CLI's
// start, the workflow, the Deliver attempt and the webhook request, whose
// traceparent the receiver gets. (Both run in this test's process, where
// the last one started owns OpenTelemetry's global provider, which the
// webhook's span goes through; each is its own process in use.)
func TestSendAndWorkerExportOneTrace(t *testing.T) {
	col := &collector{}
	srv := httptest.NewServer(col)
	t.Cleanup(srv.Close)
	// The worker exports a batch every 100ms instead of every 5s.
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
	env := cliEnvWith(t, mapEnv{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL})
	rcv := testenv.NewReceiver(t)

	r := run(context.Background(), env, "send", "--key", "traced-cli", "--channel", "webhook", "--to", rcv.URL+"/hook", "--body", "b", "--wait")
	require.Equal(t, exitOK, r.code, r.stderr)

	headers := rcv.Headers()
	require.Len(t, headers, 1)
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(headers[0])))
	require.True(t, sc.IsValid(), "the webhook carries a traceparent: %v", headers[0])
	traceID := sc.TraceID().String()

	want := []string{"StartWorkflow:NotificationWorkflow", "RunWorkflow:NotificationWorkflow", "RunActivity:Deliver", "webhook POST"}
	require.Eventually(t, func() bool {
		names := col.names(traceID)
		for _, w := range want {
			if !slices.Contains(names, w) {
				return false
			}
		}
		return true
	}, time.Minute, 100*time.Millisecond, "the collector gets %v in the receiver's trace", want)
	col.mu.Lock()
	defer col.mu.Unlock()
	for _, s := range col.spans {
		assert.Equal(t, "onceflow", s.service, "span %s", s.name)
	}
}

func TestBadTracingSettingsNameTheVariable(t *testing.T) {
	r := run(context.Background(), mapEnv{"OTEL_TRACES_EXPORTER": "zipkin"}, "send", "--key", "k", "--channel", "webhook", "--to", "https://x.example", "--body", "b")
	assert.Equal(t, exitInput, r.code)
	assert.Contains(t, r.stderr, `OTEL_TRACES_EXPORTER="zipkin"`)
}
