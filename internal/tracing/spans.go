package tracing

import (
	"context"
	"strings"
	"sync/atomic"

	"github.com/cim-infra/registry/pkg/api"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// instrumentationName names the services' tracer.
const instrumentationName = "github.com/cim-infra/registry"

// Operation names (messaging.operation.name) and the attributes every messaging span carries.
const (
	OpProcess = "process"
	OpPublish = "publish"
	OpReceive = "receive"

	system = "nats"
)

// noSpan is what the helpers return while tracing is off: a no-op span, no allocation.
var noSpan = trace.SpanFromContext(context.Background())

// traceContext is the propagator of the W3C headers, whatever the global one is.
var traceContext = propagation.TraceContext{}

// current is the services' tracer from the provider Use installed: a provider's Tracer takes a
// lock, a request should not.
var current atomic.Pointer[tracerHolder]

type tracerHolder struct{ trace.Tracer }

func tracer() trace.Tracer {
	if t := current.Load(); t != nil {
		return t.Tracer
	}
	return otel.GetTracerProvider().Tracer(instrumentationName)
}

// Start starts an internal span named name, a child of ctx's span; a no-op while tracing is off.
func Start(ctx context.Context, name string) (context.Context, trace.Span) {
	if !enabled.Load() {
		return ctx, noSpan
	}
	return tracer().Start(ctx, name)
}

// StartServer starts the server span of a request received on prefix + "." + endpoint:
// "process <subject>" (a request subject names an endpoint, not an entity), a child of the trace
// context in the request's headers hdr, if any. A no-op while tracing is off, which does not
// even build the subject.
func StartServer(ctx context.Context, prefix, endpoint string, hdr nats.Header) (context.Context, trace.Span) {
	if !enabled.Load() {
		return ctx, noSpan
	}
	subject := prefix + "." + endpoint
	if len(hdr) > 0 {
		ctx = traceContext.Extract(ctx, api.TraceCarrier(hdr))
	}
	return tracer().Start(ctx, OpProcess+" "+subject, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(messaging(OpProcess, "process", subject, "")...))
}

// StartPublish starts the producer span of a write of events to subject, a child of ctx's span.
// Inject its context into the events' headers. A no-op while tracing is off.
func StartPublish(ctx context.Context, subject string) (context.Context, trace.Span) {
	if !enabled.Load() {
		return ctx, noSpan
	}
	template := SubjectTemplate(subject)
	return tracer().Start(ctx, OpPublish+" "+template, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(messaging(OpPublish, "send", subject, template)...))
}

// StartProcess starts the consumer span of a batch of stored events whose first event is on
// subject with headers first: "process <template of subject>", parented by the trace context
// stored on that event (a new trace if it has none). Link the batch's other events with Link.
// A no-op while tracing is off.
func StartProcess(ctx context.Context, subject string, first nats.Header) (context.Context, trace.Span) {
	if !enabled.Load() {
		return ctx, noSpan
	}
	if len(first) > 0 {
		ctx = traceContext.Extract(ctx, api.TraceCarrier(first))
	}
	template := SubjectTemplate(subject)
	return tracer().Start(ctx, OpProcess+" "+template, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(messaging(OpProcess, "process", "", template)...))
}

// Link links span to the trace context stored in an event's headers h, unless there is none or
// it is span's parent.
func Link(span trace.Span, h nats.Header) {
	if !span.IsRecording() || len(h) == 0 {
		return
	}
	sc := trace.SpanContextFromContext(traceContext.Extract(context.Background(), api.TraceCarrier(h)))
	if !sc.IsValid() {
		return
	}
	if p, ok := span.(interface{ Parent() trace.SpanContext }); ok && p.Parent().Equal(sc) {
		return
	}
	span.AddLink(trace.Link{SpanContext: sc})
}

// Inject writes ctx's trace context into headers, as an event stores it (api.HeaderTraceparent,
// api.HeaderTracestate), and returns headers (a new map if it was nil and there is a context).
// It writes nothing while tracing is off or without a span.
func Inject(ctx context.Context, headers map[string]string) map[string]string {
	if !enabled.Load() || !trace.SpanContextFromContext(ctx).IsValid() {
		return headers
	}
	if headers == nil {
		headers = make(map[string]string, 2)
	}
	traceContext.Inject(ctx, propagation.MapCarrier(headers))
	return headers
}

// Fail marks span as failed with err.
func Fail(span trace.Span, err error) {
	if err == nil || !span.IsRecording() {
		return
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}

// SubjectTemplate is subject with its last token, the aggregate's id in an event subject
// <prefix>.<type>.<id>, replaced by "{id}": a destination of low cardinality for span names.
func SubjectTemplate(subject string) string {
	i := strings.LastIndexByte(subject, '.')
	if i < 0 {
		return subject
	}
	return subject[:i+1] + "{id}"
}

func messaging(operation, operationType, destination, template string) []attribute.KeyValue {
	kv := make([]attribute.KeyValue, 0, 5)
	kv = append(kv, attribute.String("messaging.system", system),
		attribute.String("messaging.operation.name", operation),
		attribute.String("messaging.operation.type", operationType))
	if destination != "" {
		kv = append(kv, attribute.String("messaging.destination.name", destination))
	}
	if template != "" {
		kv = append(kv, attribute.String("messaging.destination.template", template))
	}
	return kv
}
