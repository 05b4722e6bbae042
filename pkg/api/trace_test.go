package api

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// The W3C propagator writes through TraceCarrier the names it gives, lowercase (NATS headers are
// case-sensitive), and reads them back, also from a header whose name another client
// canonicalised.
func TestTraceCarrier(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	h := nats.Header{}
	propagation.TraceContext{}.Inject(ctx, TraceCarrier(h))
	const want = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if got := h[HeaderTraceparent]; len(got) != 1 || got[0] != want {
		t.Fatalf("header %s = %q, want [%q]; headers %v", HeaderTraceparent, got, want, h)
	}
	if len(h) != 1 {
		t.Errorf("headers %v, want only %s", h, HeaderTraceparent)
	}
	for _, name := range []string{HeaderTraceparent, "Traceparent", "TRACEPARENT"} {
		got := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), TraceCarrier(nats.Header{name: {want}})))
		if !got.Equal(sc.WithRemote(true)) {
			t.Errorf("extracted from %q: %v, want %v", name, got, sc)
		}
	}
}

func TestWithTracerProviderNil(t *testing.T) {
	if _, err := NewClient(&nats.Conn{}, WithTracerProvider(nil)); err == nil {
		t.Fatal("a nil tracer provider was accepted")
	}
}
