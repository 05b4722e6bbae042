package tracing

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
)

func TestSubjectTemplate(t *testing.T) {
	for subject, want := range map[string]string{
		"cim.evt.computeresource.0b6f6ba3-43c4-4f3c-9b0d-6b1f3b0b6a2e": "cim.evt.computeresource.{id}",
		"evt.order.1": "evt.order.{id}",
		"single":      "single",
	} {
		if got := SubjectTemplate(subject); got != want {
			t.Errorf("SubjectTemplate(%q) = %q, want %q", subject, got, want)
		}
	}
}

// While tracing is off the helpers on a request's path allocate nothing: a command costs what
// it cost without tracing.
func TestOffAllocatesNothing(t *testing.T) {
	if Enabled() {
		t.Fatal("tracing on")
	}
	ctx := context.Background()
	hdr := nats.Header{"traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	allocs := testing.AllocsPerRun(100, func() {
		sctx, span := StartServer(ctx, "cim.cmd.computeresource", "register", hdr)
		_, child := Start(sctx, "load")
		child.End()
		_, pub := StartPublish(sctx, "cim.evt.computeresource.x")
		if Inject(sctx, nil) != nil {
			t.Fatal("Inject wrote headers")
		}
		pub.End()
		_, proc := StartProcess(ctx, "cim.evt.computeresource.x", hdr)
		Link(proc, hdr)
		proc.End()
		span.End()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per request with tracing off, want 0", allocs)
	}
}
