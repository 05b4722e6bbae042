package tracing_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/commandservice"
	"github.com/cim-infra/registry/internal/metricsprojector"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/queryservice"
	"github.com/cim-infra/registry/internal/tracing"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

const waitLimit = 60 * time.Second

// waitSpans polls the recorder until ok accepts its ended spans, or fails after waitLimit.
func waitSpans(t *testing.T, rec *tracetest.SpanRecorder, what string, ok func([]sdktrace.ReadOnlySpan) bool) []sdktrace.ReadOnlySpan {
	t.Helper()
	for deadline := time.Now().Add(waitLimit); ; {
		spans := rec.Ended()
		if ok(spans) {
			return spans
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s in %s", what, waitLimit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

// spansWhere returns the spans named name whose attribute key is value (any value if key is "").
func spansWhere(spans []sdktrace.ReadOnlySpan, name, key, value string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name && (key == "" || attr(s, key) == value) {
			out = append(out, s)
		}
	}
	return out
}

func names(spans []sdktrace.ReadOnlySpan) string {
	var n []string
	for _, s := range spans {
		n = append(n, fmt.Sprintf("%s[%s]", s.Name(), attr(s, "cim.projector")))
	}
	return strings.Join(n, ", ")
}

// One command sent through the client gives one trace that reaches every read model: the
// metrics projector's and the query service's spans for its event are children of the append
// that stored it, and a query through the client continues the client's trace in the query
// service.
func TestOneTraceFromCommandToReadModels(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(tracing.Use(tp))
	srv := natstest.RunServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	cmdOpts := commandservice.DefaultOptions()
	cmds, err := commandservice.New(ctx, natstest.Connect(t, srv.ClientURL()), jetstore.Config{}, cmdOpts, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmds.Shutdown(context.Background()) })

	js, err := jetstream.New(natstest.Connect(t, srv.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := metricsprojector.New(js, metricsprojector.Options{FetchWait: 100 * time.Millisecond}, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	queries, err := queryservice.New(natstest.Connect(t, srv.ClientURL()), queryservice.Options{BatchSize: 100, DefaultWait: 10 * time.Second}, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	go func() { _ = metrics.Run(runCtx); done <- struct{}{} }()
	go func() { _ = queries.Run(runCtx); done <- struct{}{} }()
	t.Cleanup(func() { stop(); <-done; <-done })
	for deadline := time.Now().Add(waitLimit); metrics.Ready(ctx) != nil || queries.Ready(ctx) != nil; {
		if time.Now().After(deadline) {
			t.Fatalf("read models not ready: metrics %v, query service %v", metrics.Ready(ctx), queries.Ready(ctx))
		}
		time.Sleep(10 * time.Millisecond)
	}

	client, err := api.NewClient(natstest.Connect(t, srv.ClientURL()), api.WithTracerProvider(tp),
		api.WithTimeout(20*time.Second), api.WithRetries(20), api.WithRetryBackoff(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	reply, err := client.Register(ctx, api.Register{Hostname: "traced-e2e", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	const process = "process cim.evt.computeresource.{id}"
	spans := waitSpans(t, rec, "span of each read model", func(spans []sdktrace.ReadOnlySpan) bool {
		return len(spansWhere(spans, process, "cim.projector", metricsprojector.DefaultName)) > 0 &&
			len(spansWhere(spans, process, "cim.projector", queryservice.ServiceName)) > 0
	})
	clientSpan := spansWhere(spans, "publish "+api.CommandSubject(api.CmdRegister), "", "")
	appendSpan := spansWhere(spans, "publish cim.evt.computeresource.{id}", "", "")
	if len(clientSpan) != 1 || len(appendSpan) != 1 {
		t.Fatalf("spans: %s", names(spans))
	}
	traceID := clientSpan[0].SpanContext().TraceID()
	if appendSpan[0].SpanContext().TraceID() != traceID {
		t.Fatalf("append in trace %s, client in %s", appendSpan[0].SpanContext().TraceID(), traceID)
	}
	for _, model := range []string{metricsprojector.DefaultName, queryservice.ServiceName} {
		got := spansWhere(spans, process, "cim.projector", model)
		if len(got) != 1 {
			t.Fatalf("%d spans of %s, want 1 (one event): %s", len(got), model, names(spans))
		}
		s := got[0]
		if s.SpanContext().TraceID() != traceID || s.Parent().SpanID() != appendSpan[0].SpanContext().SpanID() {
			t.Errorf("%s's span in trace %s under %s, want trace %s under the append %s", model,
				s.SpanContext().TraceID(), s.Parent().SpanID(), traceID, appendSpan[0].SpanContext().SpanID())
		}
		if got, want := attr(s, "cim.checkpoint"), fmt.Sprint(reply.Version); got != want {
			t.Errorf("%s's span checkpoint %q, want %s", model, got, want)
		}
		for _, kv := range []attribute.KeyValue{attribute.String("messaging.system", "nats"), attribute.String("messaging.operation.name", "process"),
			attribute.String("messaging.destination.template", "cim.evt.computeresource.{id}"), attribute.String("cim.lag.events", "0")} {
			if got := attr(s, string(kv.Key)); got != kv.Value.String() {
				t.Errorf("%s's span %s = %q, want %q", model, kv.Key, got, kv.Value.String())
			}
		}
	}

	rec.Reset()
	if _, err := client.List(ctx, api.List{Consistency: api.Consistency{MinSequence: reply.Version}}); err != nil {
		t.Fatal(err)
	}
	listName := "process " + api.QuerySubject(api.QueryList)
	spans = waitSpans(t, rec, "server span of the list query", func(spans []sdktrace.ReadOnlySpan) bool {
		return len(spansWhere(spans, listName, "", "")) > 0
	})
	server, listClient := spansWhere(spans, listName, "", ""), spansWhere(spans, "publish "+api.QuerySubject(api.QueryList), "", "")
	if len(server) != 1 || len(listClient) != 1 {
		t.Fatalf("spans: %s", names(spans))
	}
	if server[0].Parent().SpanID() != listClient[0].SpanContext().SpanID() || server[0].SpanContext().TraceID() != listClient[0].SpanContext().TraceID() {
		t.Errorf("list server span under %s, want the client span %s", server[0].Parent().SpanID(), listClient[0].SpanContext().SpanID())
	}
}
