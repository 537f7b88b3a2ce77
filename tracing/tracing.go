// Package tracing turns OpenTelemetry tracing on for an Onceflow process,
// from the standard OTEL_* variables, and gives the pieces that put one
// notification in one trace: an HTTP server span for the API
// (Tracing.Handler), and Temporal's tracing interceptor
// (Tracing.Interceptors) for the client that starts notifications and the
// workers that run them. Provider requests are spans of their own
// (providers.DoHTTP), and webhooks carry the W3C traceparent header of
// theirs, so that a receiver can continue the trace.
//
// Spans name operations, never people: no attribute carries a recipient, a
// URL, a body or a key's payload. Workflow IDs, which Temporal's
// interceptor records, carry no personal data by design.
//
// A nil *Tracing is tracing off; its methods then change nothing.
package tracing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
)

// The OTEL_* variables that decide whether tracing is on and which OTLP
// protocol exports it. The exporter reads the rest of its settings
// (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _CERTIFICATE, ...), the resource
// (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES), the sampler
// (OTEL_TRACES_SAMPLER) and the batching (OTEL_BSP_*) from the process's
// environment itself, as the OpenTelemetry specification says.
const (
	EnvSDKDisabled    = "OTEL_SDK_DISABLED"
	EnvTracesExporter = "OTEL_TRACES_EXPORTER"
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
)

// ServiceName is the service.name of Onceflow's spans unless
// OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES says otherwise.
const ServiceName = "onceflow"

// Scope is the instrumentation scope of the spans Onceflow starts itself.
const Scope = "github.com/onceflow/onceflow"

// Tracing is a process's tracer provider and the propagator of its trace
// context. Create it with FromEnv, or Install in tests.
type Tracing struct {
	provider   trace.TracerProvider
	propagator propagation.TextMapPropagator
	shutdown   func(context.Context) error
}

// Enabled says whether getenv turns tracing on, and with which exporter
// protocol. Tracing is off when OTEL_SDK_DISABLED is "true" or
// OTEL_TRACES_EXPORTER is "none"; on when OTEL_TRACES_EXPORTER is "otlp";
// and, with OTEL_TRACES_EXPORTER unset, on exactly when an OTLP endpoint
// (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT) is
// set. The protocol is OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else
// OTEL_EXPORTER_OTLP_PROTOCOL, else the specification's default,
// "http/protobuf"; "grpc" is the other one supported. Any other exporter
// or protocol is an error that names the variable.
func Enabled(getenv func(string) string) (on bool, protocol string, err error) {
	if strings.EqualFold(strings.TrimSpace(getenv(EnvSDKDisabled)), "true") {
		return false, "", nil
	}
	switch exp := strings.TrimSpace(getenv(EnvTracesExporter)); exp {
	case "none":
		return false, "", nil
	case "otlp":
	case "":
		if getenv(EnvTracesEndpoint) == "" && getenv(EnvEndpoint) == "" {
			return false, "", nil
		}
	default:
		return false, "", fmt.Errorf("%s=%q is not supported; use \"otlp\" or \"none\"", EnvTracesExporter, exp)
	}
	name, protocol := EnvTracesProtocol, strings.TrimSpace(getenv(EnvTracesProtocol))
	if protocol == "" {
		name, protocol = EnvProtocol, strings.TrimSpace(getenv(EnvProtocol))
	}
	switch protocol {
	case "":
		return true, "http/protobuf", nil
	case "http/protobuf", "grpc":
		return true, protocol, nil
	}
	return false, "", fmt.Errorf("%s=%q is not supported; use \"http/protobuf\" or \"grpc\"", name, protocol)
}

// FromEnv turns tracing on when getenv says so (see Enabled), with a
// batching OTLP exporter, and returns nil when it does not. Shut the
// returned Tracing down before the process exits, or the last spans are
// lost. It also makes its provider and propagator OpenTelemetry's global
// ones, which providers.DoHTTP uses.
func FromEnv(ctx context.Context, getenv func(string) string) (*Tracing, error) {
	on, protocol, err := Enabled(getenv)
	if err != nil || !on {
		return nil, err
	}
	// The endpoint that turned tracing on is the one exported to, also
	// when getenv is not the process's environment (tests).
	traces, base := getenv(EnvTracesEndpoint), strings.TrimRight(getenv(EnvEndpoint), "/")
	for name, v := range map[string]string{EnvTracesEndpoint: traces, EnvEndpoint: base} {
		// The exporter would ignore a bad URL and send to localhost.
		if u, perr := url.Parse(v); v != "" && (perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
			return nil, fmt.Errorf("%s=%q is not an http:// or https:// URL", name, v)
		}
	}
	var exp sdktrace.SpanExporter
	if protocol == "grpc" {
		var opts []otlptracegrpc.Option
		if endpoint := cmp.Or(traces, base); endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(endpoint))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	} else {
		var opts []otlptracehttp.Option
		switch {
		case traces != "":
			opts = append(opts, otlptracehttp.WithEndpointURL(traces))
		case base != "":
			opts = append(opts, otlptracehttp.WithEndpointURL(base+"/v1/traces"))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter (%s): %w", protocol, err)
	}
	// Later options win: OTEL_SERVICE_NAME overrides ServiceName.
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(attribute.String("service.name", ServiceName)),
		resource.WithFromEnv())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("OpenTelemetry resource (OTEL_RESOURCE_ATTRIBUTES): %w", err)
	}
	// NewTracerProvider reads OTEL_TRACES_SAMPLER, the batcher OTEL_BSP_*.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return Install(tp), nil
}

// Install makes tp the provider of Onceflow's spans and OpenTelemetry's
// global one, with W3C trace context as the propagator, and returns the
// Tracing whose Shutdown shuts tp down. Tests install a provider that
// records spans.
//
// Only the trace context is propagated, not W3C baggage: what an API
// caller puts in its baggage is not relayed to the receivers of its
// notifications.
func Install(tp *sdktrace.TracerProvider) *Tracing {
	t := &Tracing{provider: tp, propagator: propagation.TraceContext{}, shutdown: tp.Shutdown}
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(t.propagator)
	return t
}

// Interceptors returns Temporal's tracing interceptor for client.Options:
// the client's starts become spans under the caller's (the API request's),
// and workers created from that client trace each workflow and each
// activity attempt under them. None when t is nil.
func (t *Tracing) Interceptors() []interceptor.ClientInterceptor {
	if t == nil {
		return nil
	}
	i, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{
		Tracer: t.provider.Tracer("temporal-sdk-go"),
		// Workflows and activities need no caller's baggage.
		DisableBaggage:    true,
		TextMapPropagator: t.propagator,
	})
	if err != nil {
		// NewTracingInterceptor fails only on options set here.
		panic(fmt.Sprintf("tracing: Temporal interceptor: %v", err))
	}
	return []interceptor.ClientInterceptor{i}
}

// Shutdown exports the spans still buffered and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	if err := t.shutdown(ctx); err != nil {
		return fmt.Errorf("flush traces: %w", err)
	}
	return nil
}
