package providers

import (
	"net/http"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// traceScope names the tracer of provider requests.
const traceScope = "github.com/onceflow/onceflow/providers"

// startSpan starts the client span of one provider request under the
// span in req's context (the Deliver attempt's), through OpenTelemetry's
// global provider, which the tracing package installs (a no-op one
// otherwise). With api.TraceContext it writes the span's traceparent into
// req's headers. The span holds the API's name, the method, the status and
// the outcome: never the URL, which is a recipient or carries credentials,
// nor a body. Call end with DoHTTP's result.
func startSpan(req *http.Request, api API) (*http.Request, func(Response, error)) {
	ctx, span := otel.Tracer(traceScope).Start(req.Context(), api.Name+" "+req.Method,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("onceflow.provider", api.Name),
			attribute.String("http.request.method", req.Method)))
	if api.TraceContext {
		otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
	return req.WithContext(ctx), func(resp Response, err error) {
		defer span.End()
		if resp.Status != 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", resp.Status))
		}
		outcome := outcomeOf(err)
		span.SetAttributes(attribute.String("onceflow.outcome", outcome))
		if err != nil {
			// The outcome, not the message: an error quotes what the
			// receiver answered.
			span.SetStatus(codes.Error, outcome)
		}
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
