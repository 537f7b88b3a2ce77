package providers

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// traceScope names the tracer of provider requests.
const traceScope = "github.com/onceflow/onceflow/providers"

// StartSpan starts the client span of one request to a provider (its
// API's name, such as "webhook" or "email") under the span in ctx, the
// Deliver attempt's, through OpenTelemetry's global provider, which the
// tracing package installs (a no-op one otherwise). The span is named
// "<provider> <operation>" ("webhook POST", "email SMTP"); attrs must not
// carry a recipient, a URL or a body. End it with EndSpan.
func StartSpan(ctx context.Context, provider, operation string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return otel.Tracer(traceScope).Start(ctx, provider+" "+operation,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(append([]attribute.KeyValue{attribute.String("onceflow.provider", provider)}, attrs...)...))
}

// EndSpan records the outcome of a provider request, err, on span and
// ends it.
func EndSpan(span trace.Span, err error) {
	outcome := outcomeOf(err)
	span.SetAttributes(attribute.String("onceflow.outcome", outcome))
	if err != nil {
		// The outcome, not the message: an error quotes what the
		// receiver answered.
		span.SetStatus(codes.Error, outcome)
	}
	span.End()
}

// startSpan is StartSpan for DoHTTP. With api.TraceContext it writes the
// span's traceparent into req's headers. The span holds the method and the
// status: never the URL, which is a recipient or carries credentials.
func startSpan(req *http.Request, api API) (*http.Request, func(Response, error)) {
	ctx, span := StartSpan(req.Context(), api.Name, req.Method, attribute.String("http.request.method", req.Method))
	if api.TraceContext {
		otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
	return req.WithContext(ctx), func(resp Response, err error) {
		if resp.Status != 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", resp.Status))
		}
		EndSpan(span, err)
	}
}

// outcomeOf classes a provider request's result in words fit for traces and
// metrics: "sent", "maybe_sent" (the receiver may have acted on it),
// "permanent" (retrying cannot help) or "retryable".
func outcomeOf(err error) string {
	if err == nil {
		return "sent"
	}
	pe := Classify(err)
	switch {
	case pe.MaybeSent:
		return "maybe_sent"
	case pe.Permanent:
		return "permanent"
	}
	return "retryable"
}
