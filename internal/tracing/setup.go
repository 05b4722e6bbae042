package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ErrConfig is wrapped by Setup's errors about the OTEL_* environment variables.
var ErrConfig = errors.New("tracing: invalid OTEL_* setting")

// enabled is set while a tracer provider is installed (Setup or Use): the services' hot paths
// read it first and do nothing more when it is false.
var enabled atomic.Bool

// Enabled reports whether spans are being recorded and exported.
func Enabled() bool { return enabled.Load() }

// Setup installs the process's tracer provider from the standard OTEL_* environment variables.
// Tracing is on when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is set,
// unless OTEL_SDK_DISABLED is "true" or OTEL_TRACES_EXPORTER is "none"; otherwise Setup installs
// nothing (OpenTelemetry's global provider stays a no-op), starts no goroutine, and the returned
// shutdown does nothing.
//
// When on: spans go through a batch span processor (OTEL_BSP_*) to an OTLP exporter over
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL, "http/protobuf" (the
// default) or "grpc"; the exporter reads its endpoint, headers, time-out, certificates and
// compression from the OTEL_EXPORTER_OTLP_* variables itself, the sampler comes from
// OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (default: parent-based, always on), and the
// resource's service.name is serviceName unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES
// say otherwise. The propagator is W3C Trace Context. shutdown exports the spans still buffered,
// within its ctx.
func Setup(ctx context.Context, serviceName string) (shutdown func(context.Context) error, err error) {
	none := func(context.Context) error { return nil }
	if !wanted() {
		return none, nil
	}
	exp, err := exporter(ctx)
	if err != nil {
		return none, err
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", serviceName)),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return none, fmt.Errorf("%w: resource: %w", ErrConfig, err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	restore := Use(tp)
	return func(ctx context.Context) error {
		restore()
		return tp.Shutdown(ctx)
	}, nil
}

// wanted reads whether the environment asks for traces to be exported.
func wanted() bool {
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") ||
		strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER")), "none") {
		return false
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
}

// exporter builds the OTLP exporter of the configured protocol.
func exporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	if v := os.Getenv("OTEL_TRACES_EXPORTER"); v != "" && !strings.EqualFold(v, "otlp") {
		return nil, fmt.Errorf("%w: OTEL_TRACES_EXPORTER %q: only \"otlp\" and \"none\" are supported", ErrConfig, v)
	}
	protocol := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch protocol {
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("%w: OTLP protocol %q: want \"http/protobuf\" or \"grpc\"", ErrConfig, protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: OTLP exporter: %w", ErrConfig, err)
	}
	return exp, nil
}

// Use installs tp as OpenTelemetry's global tracer provider, W3C Trace Context as the global
// propagator, and turns the services' spans on, until restore is called (which puts back what
// was there and turns them off). Setup calls it; tests call it with a provider that records
// spans in memory. Not for concurrent use with another Use.
func Use(tp trace.TracerProvider) (restore func()) {
	prevProp := otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	current.Store(&tracerHolder{tp.Tracer(instrumentationName)})
	enabled.Store(true)
	return func() {
		enabled.Store(false)
		current.Store(nil)
		// Not the provider that was there: OpenTelemetry's default one delegates, once set, to
		// the first provider ever installed.
		otel.SetTracerProvider(noop.NewTracerProvider())
		otel.SetTextMapPropagator(prevProp)
	}
}

// shutdownTimeout bounds the export of the spans still buffered when a service stops.
const shutdownTimeout = 5 * time.Second

// Shutdown calls shutdown with a deadline of its own: the service's context is done by then.
func Shutdown(shutdown func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return shutdown(ctx)
}
