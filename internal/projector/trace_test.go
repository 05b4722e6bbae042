package projector

import (
	"fmt"
	"github.com/cim-infra/registry/internal/testkit"
	"testing"

	"github.com/cim-infra/registry/internal/tracing"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// A batch's span is parented by the trace context stored on its first event, linked to every
// other event's, and says what the batch left: checkpoint, lag and dead letters.
func TestRunnerSpanPerBatchJoinsTheEventsTraces(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	t.Cleanup(tracing.Use(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))))
	js, ctx := setup(t)
	sink := newMemSink()
	sink.poison["event-2"] = true
	var stored []trace.SpanContext
	for i := range 4 {
		tid, _ := trace.TraceIDFromHex(fmt.Sprintf("%032x", i+1))
		sid, _ := trace.SpanIDFromHex(fmt.Sprintf("%016x", i+1))
		stored = append(stored, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true}))
		msg := &nats.Msg{Subject: fmt.Sprintf("cim.evt.test.a%d", i), Data: fmt.Appendf(nil, "event-%d", i),
			Header: nats.Header{"traceparent": {fmt.Sprintf("00-%s-%s-01", tid, sid)}}}
		if i == 3 {
			msg.Header = nil // an event stored without a trace context
		}
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	_, stop := startRunner(t, ctx, js, sink, prometheus.NewRegistry())
	testkit.WaitFor(t, ctx, "4 events", func() bool { cp, _, _ := sink.snapshot(); return cp == 4 })
	stop()

	var spans []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "process cim.evt.test.{id}" {
			spans = append(spans, s)
		}
	}
	if len(spans) != 1 {
		t.Fatalf("%d batch spans, want 1 (one fetch of 4 events)", len(spans))
	}
	s := spans[0]
	if !s.Parent().Equal(stored[0]) || s.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("parent %v kind %s, want the first event's %v, consumer", s.Parent(), s.SpanKind(), stored[0])
	}
	var linked []trace.SpanContext
	for _, l := range s.Links() {
		linked = append(linked, l.SpanContext)
	}
	if len(linked) != 2 || !linked[0].Equal(stored[1]) || !linked[1].Equal(stored[2]) {
		t.Errorf("links %v, want the second and third events' %v %v", linked, stored[1], stored[2])
	}
	want := map[string]string{"cim.checkpoint": "4", "cim.dead_letters": "1", "cim.lag.events": "0", "cim.applied": "3",
		"messaging.batch.message_count": "4", "messaging.consumer.group.name": "projector-test", "messaging.system": "nats"}
	for _, kv := range s.Attributes() {
		if w, ok := want[string(kv.Key)]; ok {
			if kv.Value.String() != w {
				t.Errorf("attribute %s = %s, want %s", kv.Key, kv.Value.String(), w)
			}
			delete(want, string(kv.Key))
		}
	}
	if len(want) > 0 {
		t.Errorf("attributes missing: %v", want)
	}
	var deadLetterEvent bool
	for _, e := range s.Events() {
		deadLetterEvent = deadLetterEvent || e.Name == "dead_letter"
	}
	if !deadLetterEvent {
		t.Error("no dead_letter event on the span")
	}
}
