package commandservice

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/tracing"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// recordSpans installs a tracer provider that records every span in memory, for the test.
// Tests that call it must not run in parallel: the provider is the process's.
func recordSpans(t *testing.T) (*tracetest.SpanRecorder, trace.TracerProvider) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	restore := tracing.Use(tp)
	t.Cleanup(restore)
	return rec, tp
}

// spanNamed returns the one ended span named name, or fails.
func spanNamed(t *testing.T, spans []sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans named %q, want 1; spans: %s", len(found), name, spanNames(spans))
	}
	return found[0]
}

func spanNames(spans []sdktrace.ReadOnlySpan) string {
	var names []string
	for _, s := range spans {
		names = append(names, fmt.Sprintf("%s(%s<-%s)", s.Name(), s.SpanContext().SpanID(), s.Parent().SpanID()))
	}
	return strings.Join(names, ", ")
}

func attrOf(s sdktrace.ReadOnlySpan, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// endedSpans waits until the server span of a request has ended (it ends after the reply is
// sent) and returns the ended spans.
func endedSpans(t *testing.T, rec *tracetest.SpanRecorder, serverSpan string) []sdktrace.ReadOnlySpan {
	t.Helper()
	for deadline := time.Now().Add(testTimeout); ; {
		spans := rec.Ended()
		for _, s := range spans {
			if s.Name() == serverSpan {
				return spans
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no span %q ended; spans: %s", serverSpan, spanNames(spans))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// syncBuffer is a log sink for a service writing from its workers.
type syncBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b.buf.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// One command through the client gives one trace: the client's span, the service's server span
// under it, and under that the load, decide and append (publish) spans; the stored event carries
// the append's trace context in the lowercase W3C headers, and the service's log line of the
// command carries the trace and span ids.
func TestTraceOfOneCommand(t *testing.T) {
	rec, tp := recordSpans(t)
	srv := natstest.RunServer(t)
	logs := newSyncBuffer()
	ctx := testCtx(t)
	o := DefaultOptions()
	o.RequestTimeout = testTimeout
	svc, err := New(ctx, natstest.Connect(t, srv.ClientURL()), jetstore.Config{}, o,
		zerolog.New(logs).Level(zerolog.DebugLevel), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
	c := newClient(t, srv.ClientURL(), api.WithTracerProvider(tp))

	reply, err := c.Register(ctx, api.Register{Hostname: "traced-1", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	spans := endedSpans(t, rec, "process "+api.CommandSubject(api.CmdRegister))

	client := spanNamed(t, spans, "publish "+api.CommandSubject(api.CmdRegister))
	server := spanNamed(t, spans, "process "+api.CommandSubject(api.CmdRegister))
	load := spanNamed(t, spans, spanLoad)
	decide := spanNamed(t, spans, spanDecide)
	appendSpan := spanNamed(t, spans, "publish cim.evt.computeresource.{id}")
	traceID := client.SpanContext().TraceID()
	for _, s := range []sdktrace.ReadOnlySpan{server, load, decide, appendSpan} {
		if s.SpanContext().TraceID() != traceID {
			t.Errorf("span %q in trace %s, want the client's %s", s.Name(), s.SpanContext().TraceID(), traceID)
		}
	}
	if client.SpanKind() != trace.SpanKindClient || server.SpanKind() != trace.SpanKindServer || appendSpan.SpanKind() != trace.SpanKindProducer {
		t.Errorf("kinds client %s, server %s, append %s", client.SpanKind(), server.SpanKind(), appendSpan.SpanKind())
	}
	if server.Parent().SpanID() != client.SpanContext().SpanID() {
		t.Errorf("server span's parent %s, want the client span %s", server.Parent().SpanID(), client.SpanContext().SpanID())
	}
	for _, s := range []sdktrace.ReadOnlySpan{load, decide, appendSpan} {
		if s.Parent().SpanID() != server.SpanContext().SpanID() {
			t.Errorf("span %q's parent %s, want the server span %s", s.Name(), s.Parent().SpanID(), server.SpanContext().SpanID())
		}
	}
	for span, want := range map[sdktrace.ReadOnlySpan]map[string]string{
		server:     {"messaging.system": "nats", "messaging.operation.name": "process", "messaging.destination.name": api.CommandSubject(api.CmdRegister), "cim.aggregate_id": reply.AggregateID},
		appendSpan: {"messaging.system": "nats", "messaging.operation.name": "publish", "messaging.destination.template": "cim.evt.computeresource.{id}", "messaging.destination.name": "cim.evt.computeresource." + reply.AggregateID},
		load:       {attrLoad: "cache_miss"},
	} {
		for k, v := range want {
			if got, _ := attrOf(span, k); got.String() != v {
				t.Errorf("span %q attribute %s = %q, want %q", span.Name(), k, got.String(), v)
			}
		}
	}

	// The stored event, read from the stream as any consumer would, carries the append's context.
	js, err := jetstream.New(natstest.Connect(t, srv.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, jetstore.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(ctx, "cim.evt.computeresource."+reply.AggregateID)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("00-%s-%s-01", traceID, appendSpan.SpanContext().SpanID())
	if got := msg.Header[api.HeaderTraceparent]; len(got) != 1 || got[0] != want {
		t.Errorf("stored event header %s = %q, want [%q]; headers %v", api.HeaderTraceparent, got, want, msg.Header)
	}

	var logged bool
	for _, line := range logs.lines(t) {
		if line["message"] != "command" {
			continue
		}
		logged = true
		if line["trace_id"] != traceID.String() || line["span_id"] != server.SpanContext().SpanID().String() {
			t.Errorf("command log line has trace_id %v span_id %v, want %s %s", line["trace_id"], line["span_id"], traceID, server.SpanContext().SpanID())
		}
	}
	if !logged {
		t.Error("no command log line")
	}
}

// A request that carries a W3C traceparent header, as any NATS client sends it (nats req -H
// traceparent:...), continues that trace: the lowercase name the W3C spells, and the
// canonical form http.Header writes.
func TestTraceContinuesRequestHeader(t *testing.T) {
	rec, _ := recordSpans(t)
	srv := natstest.RunServer(t)
	in := startInstance(t, srv.ClientURL())
	for i, name := range []string{"traceparent", "Traceparent"} {
		t.Run(name, func(t *testing.T) {
			rec.Reset()
			traceID, spanID := fmt.Sprintf("%032x", i+0x4bf92f35), fmt.Sprintf("%016x", i+0x00f067aa)
			body := fmt.Sprintf(`{"hostname":"raw-%d","resource_type":"vm"}`, i)
			// As nats req -H 'traceparent: 00-...' builds it: split at the first colon, both
			// sides trimmed, nats.Header.Add (which keeps the name's letter case).
			flag := name + ": 00-" + traceID + "-" + spanID + "-01"
			k, v, _ := strings.Cut(flag, ":")
			req := nats.NewMsg(api.CommandSubject(api.CmdRegister))
			req.Data = []byte(body)
			req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
			msg, err := in.nc.RequestMsg(req, testTimeout)
			if err != nil {
				t.Fatal(err)
			}
			if msg.Header.Get("Nats-Service-Error-Code") != "" {
				t.Fatalf("error reply %s", msg.Data)
			}
			server := spanNamed(t, endedSpans(t, rec, "process "+api.CommandSubject(api.CmdRegister)), "process "+api.CommandSubject(api.CmdRegister))
			if got := server.Parent(); got.TraceID().String() != traceID || got.SpanID().String() != spanID || !got.IsRemote() {
				t.Errorf("server span's parent %s/%s (remote %t), want the request's %s/%s", got.TraceID(), got.SpanID(), got.IsRemote(), traceID, spanID)
			}
		})
	}
}

// A command sent again with its command id is answered from its earlier outcome: its server span
// says it was a duplicate, and the first one's says it was not.
func TestTraceMarksDuplicateCommand(t *testing.T) {
	rec, tp := recordSpans(t)
	srv := natstest.RunServer(t)
	startInstance(t, srv.ClientURL())
	c := newClient(t, srv.ClientURL(), api.WithTracerProvider(tp))
	ctx := testCtx(t)
	cmd := api.Register{Envelope: api.Envelope{CommandID: newID()}, Hostname: "dup-1", ResourceType: "vm"}
	name := "process " + api.CommandSubject(api.CmdRegister)
	for i, wantDup := range []bool{false, true} {
		rec.Reset()
		reply, err := c.Register(ctx, cmd)
		if err != nil {
			t.Fatal(err)
		}
		if reply.Duplicate != wantDup {
			t.Fatalf("attempt %d: reply duplicate %t, want %t", i+1, reply.Duplicate, wantDup)
		}
		server := spanNamed(t, endedSpans(t, rec, name), name)
		if got, ok := attrOf(server, attrDuplicate); !ok || got.AsBool() != wantDup {
			t.Errorf("attempt %d: server span %s = %v (set %t), want %t", i+1, attrDuplicate, got.String(), ok, wantDup)
		}
	}
}

// A get or history query continues the client's trace in a server span.
func TestTraceOfQueries(t *testing.T) {
	rec, tp := recordSpans(t)
	srv := natstest.RunServer(t)
	startInstance(t, srv.ClientURL())
	c := newClient(t, srv.ClientURL(), api.WithTracerProvider(tp))
	ctx := testCtx(t)
	reply, err := c.Register(ctx, api.Register{Hostname: "queried-1", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	for name, query := range map[string]func() error{
		api.QueryGet: func() error { _, err := c.Get(ctx, api.Get{AggregateID: reply.AggregateID}); return err },
		api.QueryHistory: func() error {
			_, err := c.History(ctx, api.History{AggregateID: reply.AggregateID})
			return err
		},
	} {
		rec.Reset()
		if err := query(); err != nil {
			t.Fatal(err)
		}
		subject := api.QuerySubject(name)
		spans := endedSpans(t, rec, "process "+subject)
		server, client := spanNamed(t, spans, "process "+subject), spanNamed(t, spans, "publish "+subject)
		if server.Parent().SpanID() != client.SpanContext().SpanID() || server.SpanKind() != trace.SpanKindServer {
			t.Errorf("%s: server span under %s (kind %s), want under the client span %s", name, server.Parent().SpanID(), server.SpanKind(), client.SpanContext().SpanID())
		}
	}
}
