package devstack_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/devstack"
	"github.com/onceflow/onceflow/starter"
	"github.com/onceflow/onceflow/tracing"
)

// With tracing on, `onceflow dev` puts a notification posted to its API
// and delivered to its demo receiver in one trace, down to the demo
// receiver's own request, which continues the webhook's traceparent.
func TestDevStackTracesIntoItsDemoReceiver(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg := config(t, t.TempDir(), io.Discard)
	cfg.Tracing = tracing.Install(tp)
	s := start(t, cfg)
	t.Cleanup(s.Stop)

	post(t, s.APIURL, "dev-traced", s.APIURL+devstack.DemoWebhookPath)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := starter.New(s.Client, "").Wait(ctx, "dev-traced")
	require.NoError(t, err)

	var receiver sdktrace.ReadOnlySpan
	require.Eventually(t, func() bool {
		for _, sp := range rec.Ended() {
			if sp.Name() == "POST "+devstack.DemoWebhookPath {
				receiver = sp
				return true
			}
		}
		return false
	}, time.Minute, 50*time.Millisecond, "the demo receiver's request is a span")
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, sp := range rec.Ended() {
		byID[sp.SpanContext().SpanID()] = sp
	}
	// Walk up from the receiver to the root.
	var path []string
	for sp, ok := receiver, true; ok; sp, ok = byID[sp.Parent().SpanID()] {
		assert.Equal(t, receiver.SpanContext().TraceID(), sp.SpanContext().TraceID())
		path = append(path, sp.Name())
	}
	assert.Equal(t, []string{
		"POST /dev/webhook", "webhook POST", "RunActivity:Deliver", "StartActivity:Deliver",
		"RunWorkflow:NotificationWorkflow", "StartWorkflow:NotificationWorkflow", "POST /v1/notifications",
	}, path)
}

// discard is an exporter that drops what it is given: the benchmark
// measures what tracing costs the process, not a collector.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkTracingLatency is BenchmarkLatency's same-process webhook
// notification on a dev stack with tracing off, then on (every span
// sampled, batched to an exporter that drops them).
//
//	go test -run '^$' -bench TracingLatency -benchtime 200x ./internal/devstack
func BenchmarkTracingLatency(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "on"}[on], func(b *testing.B) {
			cfg := config(b, b.TempDir(), io.Discard)
			cfg.UIPort, cfg.APIAddr, cfg.Workers = 0, "", 1
			if on {
				tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}))
				defer func() { _ = tp.Shutdown(context.Background()) }()
				cfg.Tracing = tracing.Install(tp)
			}
			s := start(b, cfg)
			defer s.Stop()
			seen := make(chan struct{}, 1)
			rcv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { seen <- struct{}{} }))
			defer rcv.Close()
			c := starter.New(s.Client, "")
			ctx := context.Background()
			var started starter.Started
			measure(b, func(i int) {
				var err error
				started, err = c.Send(ctx, onceflow.Notification{
					Key:        fmt.Sprintf("traced-%t-%d-%d", on, b.N, i),
					Body:       "latency probe",
					Deliveries: []onceflow.Delivery{{Channel: onceflow.Webhook, To: rcv.URL}},
				})
				if err != nil {
					b.Fatal(err)
				}
				<-seen
			}, func(int) {
				if _, err := c.WaitRun(ctx, started); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}
