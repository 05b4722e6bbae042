// Package tracing is the services' OpenTelemetry tracing: the provider set up from the standard
// OTEL_* environment variables (off, at no cost, without an OTLP endpoint), and spans after the
// OpenTelemetry messaging conventions for what crosses NATS: a server span per request that
// continues the W3C trace context of its headers (api.TraceCarrier), a producer span per append
// whose context is stored on the events, and a consumer span per batch of events applied to a read
// model, parented by the first event's stored context and linked to the others'.
//
// Span names carry an operation and a low-cardinality destination: "process
// cim.cmd.computeresource.register", "publish cim.evt.computeresource.{id}", never the subject of
// one aggregate. Attributes: messaging.system "nats", messaging.operation.name,
// messaging.destination.name (the subject) and messaging.destination.template.
package tracing
