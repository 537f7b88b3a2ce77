package tracing_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/onceflow/onceflow/tracing"
)

func TestEnabled(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      map[string]string
		on       bool
		protocol string
		errVar   string
	}{
		{"nothing set", nil, false, "", ""},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true, "http/protobuf", ""},
		{"traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true, "http/protobuf", ""},
		{"exporter otlp alone", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true, "http/protobuf", ""},
		{"exporter none beats an endpoint", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, false, "", ""},
		{"SDK disabled", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, false, "", ""},
		{"grpc", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, true, "grpc", ""},
		{"traces protocol wins", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, true, "http/protobuf", ""},
		{"unsupported exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, false, "", "OTEL_TRACES_EXPORTER"},
		{"unsupported protocol", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, false, "", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			on, protocol, err := tracing.Enabled(func(k string) string { return tc.env[k] })
			if tc.errVar != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.errVar)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.on, on)
			assert.Equal(t, tc.protocol, protocol)
		})
	}
}

func TestFromEnvRefusesABadEndpoint(t *testing.T) {
	for _, name := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		_, err := tracing.FromEnv(t.Context(), func(k string) string {
			if k == name {
				return "collector:4318"
			}
			return ""
		})
		require.Error(t, err)
		assert.Contains(t, err.Error(), name)
	}
}

func TestOffChangesNothing(t *testing.T) {
	var off *tracing.Tracing
	h := http.RedirectHandler("/elsewhere", http.StatusFound)
	assert.True(t, off.Handler(h) == h, "the handler is not wrapped")
	assert.Empty(t, off.Interceptors())
	assert.NoError(t, off.Shutdown(t.Context()))
}

// The API's span continues a caller's trace, is named by its route and
// not by the path, which holds the key, and records the status.
func TestHandlerContinuesTheCallersTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tr := tracing.Install(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/notifications/{key...}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	srv := httptest.NewServer(tr.Handler(mux))
	defer srv.Close()

	req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/notifications/order-77", nil)
	require.NoError(t, err)
	const caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	req.Header.Set("traceparent", caller)
	req.Header.Set("tracestate", "caller=private-data")
	// A stand-in handler, not the API: its answer is not the document's.
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()

	spans := rec.Ended()
	require.Len(t, spans, 1)
	s := spans[0]
	assert.Equal(t, "GET /v1/notifications/{key...}", s.Name())
	assert.Equal(t, trace.SpanKindServer, s.SpanKind())
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", s.SpanContext().TraceID().String())
	assert.Equal(t, "00f067aa0ba902b7", s.Parent().SpanID().String())
	assert.Empty(t, s.SpanContext().TraceState().String(), "the caller's tracestate is not carried on")
	attrs := map[string]string{}
	for _, kv := range s.Attributes() {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	assert.Equal(t, map[string]string{"http.request.method": "GET", "http.route": "/v1/notifications/{key...}", "http.response.status_code": "418"}, attrs)
}
