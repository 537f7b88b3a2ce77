package providers

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// A provider request is a client span under the caller's; only an API
// that asks for it (webhooks) receives the span's traceparent: third
// parties' APIs (SMS, chat, push) are not told Onceflow's trace IDs.
func TestDoHTTPSpanAndTraceparent(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTracerProvider(prevTP); otel.SetTextMapPropagator(prevProp) })

	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("traceparent"))
		w.WriteHeader(http.StatusBadRequest)
	}))
	defer srv.Close()

	ctx, parent := tp.Tracer("test").Start(t.Context(), "attempt")
	for _, api := range []API{{Name: "webhook", Receiver: Keyed, TraceContext: true}, {Name: "sms", Receiver: Keyed}} {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/to/someone", nil)
		require.NoError(t, err)
		_, err = DoHTTP(NewHTTPClient(), req, api)
		require.Error(t, err)
	}
	parent.End()

	require.Len(t, got, 2)
	spans := rec.Ended()
	require.Len(t, spans, 3)
	hook := spans[0]
	assert.Equal(t, "webhook POST", hook.Name())
	assert.Equal(t, parent.SpanContext().SpanID(), hook.Parent().SpanID())
	assert.Equal(t, "00-"+hook.SpanContext().TraceID().String()+"-"+hook.SpanContext().SpanID().String()+"-01", got[0])
	assert.Empty(t, got[1], "no traceparent to an API that did not ask for it")
	attrs := map[string]string{}
	for _, kv := range hook.Attributes() {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	assert.Equal(t, map[string]string{"onceflow.provider": "webhook", "http.request.method": "POST", "http.response.status_code": "400", "onceflow.outcome": "permanent"}, attrs)
}
