package tracing_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/client"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/httpapi"
	"github.com/onceflow/onceflow/internal/openapitest"
	"github.com/onceflow/onceflow/internal/teststack"
	"github.com/onceflow/onceflow/starter"
	"github.com/onceflow/onceflow/tracing"
	"github.com/onceflow/onceflow/worker"
	"github.com/onceflow/onceflow/workflows"
)

var servers teststack.Servers

// TestMain also checks every API exchange the tests make through
// http.DefaultClient against the OpenAPI document (openapitest).
func TestMain(m *testing.M) {
	openapitest.CheckDefaultClient(httpapi.OpenAPI)
	teststack.Main(m, &servers)
}

// flakyReceiver answers 503 to its first request and 200 to the others,
// and keeps the traceparent header of each.
type flakyReceiver struct {
	mu           sync.Mutex
	traceparents []string
}

func (r *flakyReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	_, _ = io.Copy(io.Discard, req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.traceparents = append(r.traceparents, req.Header.Get("traceparent"))
	if len(r.traceparents) == 1 {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
}

func (r *flakyReceiver) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.traceparents...)
}

// One notification sent through the API, whose first webhook attempt
// fails, is one trace: the API request, the workflow, both Deliver
// attempts and both webhook requests; the receiver sees a traceparent of
// that trace on each request, naming the webhook request's span as its
// parent. No span names the recipient or the body.
func TestOneNotificationIsOneTraceIntoTheReceiver(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tr := tracing.Install(tp)
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })

	tc := servers.Temporal.NewClientWithOptions(client.Options{Interceptors: tr.Interceptors()})
	acts, rdb, err := worker.Activities(servers.WorkerConfig())
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	const queue = "q-traces"
	w := worker.New(tc, queue, teststack.Policy, acts)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	sc := starter.New(tc, queue)

	rcv := &flakyReceiver{}
	rsrv := httptest.NewServer(rcv)
	t.Cleanup(rsrv.Close)
	api := httptest.NewServer(tr.Handler(httpapi.Handler(sc, slog.New(slog.NewTextHandler(io.Discard, nil)))))
	t.Cleanup(api.Close)

	recipient := rsrv.URL + "/hooks/customer-4711"
	const body = "Parcel 99812 for Ada Lovelace"
	req, err := http.NewRequest(http.MethodPost, api.URL+"/v1/notifications",
		strings.NewReader(`{"body":"`+body+`","deliveries":[{"channel":"webhook","to":"`+recipient+`"}]}`))
	require.NoError(t, err)
	req.Header.Set("Idempotency-Key", `"traced-1"`)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)

	res, err := sc.Wait(teststack.Context(t), "traced-1")
	require.NoError(t, err)
	require.Len(t, res.Deliveries, 1)
	require.Equal(t, onceflow.Delivered, res.Deliveries[0].Status)

	// The worker ends the workflow's span after the result is recorded.
	require.Eventually(t, func() bool {
		for _, s := range rec.Ended() {
			if strings.HasPrefix(s.Name(), "RunWorkflow:") {
				return true
			}
		}
		return false
	}, time.Minute, 50*time.Millisecond, "the workflow's span ends")
	spans := rec.Ended()

	var root sdktrace.ReadOnlySpan
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	count := map[string]int{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID()] = s
		count[s.Name()]++
		if !s.Parent().IsValid() {
			require.Nil(t, root, "a second root span: %s", s.Name())
			root = s
		}
	}
	require.NotNil(t, root)
	assert.Equal(t, "POST /v1/notifications", root.Name(), "the API request is the root")
	assert.Equal(t, trace.SpanKindServer, root.SpanKind())
	traceID := root.SpanContext().TraceID()
	for _, s := range spans {
		assert.Equal(t, traceID, s.SpanContext().TraceID(), "span %s is in the API request's trace", s.Name())
		if s.Parent().IsValid() {
			assert.Contains(t, byID, s.Parent().SpanID(), "the parent of %s is a span of the trace", s.Name())
		}
	}
	assert.Equal(t, 1, count["RunWorkflow:"+workflows.Name], "one workflow span: %v", count)
	assert.Equal(t, 2, count["RunActivity:Deliver"], "a span per Deliver attempt: %v", count)
	assert.Equal(t, 2, count["webhook POST"], "a span per webhook request: %v", count)

	// The receiver can continue the trace: each request's traceparent is
	// of the trace, and its parent is that request's span.
	got := rcv.received()
	require.Len(t, got, 2)
	for _, tp := range got {
		sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(t.Context(), propagation.MapCarrier{"traceparent": tp}))
		require.True(t, sc.IsValid(), "traceparent %q", tp)
		assert.Equal(t, traceID, sc.TraceID())
		parent, ok := byID[sc.SpanID()]
		require.True(t, ok, "traceparent %q names a span of the trace", tp)
		assert.Equal(t, "webhook POST", parent.Name())
		assert.Equal(t, trace.SpanKindClient, parent.SpanKind())
	}

	// No span carries the recipient or the body, in any form a search
	// would find.
	secrets := []string{recipient, strings.TrimPrefix(rsrv.URL, "http://"), "/hooks/customer-4711", "customer-4711", body, "Ada Lovelace"}
	for _, s := range spans {
		texts := []string{s.Name(), s.Status().Description}
		for _, kv := range s.Attributes() {
			texts = append(texts, string(kv.Key)+"="+kv.Value.String())
		}
		for _, e := range s.Events() {
			texts = append(texts, e.Name)
			for _, kv := range e.Attributes {
				texts = append(texts, string(kv.Key)+"="+kv.Value.String())
			}
		}
		for _, text := range texts {
			for _, secret := range secrets {
				assert.NotContains(t, text, secret, "span %s", s.Name())
			}
		}
	}
}
