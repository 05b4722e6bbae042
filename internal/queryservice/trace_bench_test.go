package queryservice

import (
	"context"
	"encoding/json"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/internal/testkit"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// BenchmarkTraceIndexMemory reports the heap the trace index holds per event, for the
// benchmark fleet's events (seven per resource, each of its own correlation id, appended in
// commits of 7,000 as fillModel commits them).
func BenchmarkTraceIndexMemory(b *testing.B) {
	n := benchResources(b)
	events := 7 * n
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		x := newTraceIndex()
		batch := make([]traceEntry, 0, 7000)
		for seq := 1; seq <= events; seq++ {
			batch = append(batch, traceEntry{key: correlationKey(uuid.New()), seq: uint64(seq)})
			if len(batch) == cap(batch) || seq == events {
				x.append(batch)
				batch = batch[:0]
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(events), "heap-B/event")
		b.ReportMetric(float64(x.size())/float64(events), "entries-B/event")
		b.ReportMetric(float64(len(x.cur.Load().runs)), "runs")
		runtime.KeepAlive(x)
	}
}

// BenchmarkTrace reports the median time of a trace of a 7-event correlation, through NATS, in
// a model of benchResources resources (filled directly after the traced resource, whose events
// are in the stream), against the median of a core NATS request-reply carrying a reply of the
// same size, and of the trace's direct gets alone (seven in flight at once, as trace reads
// them), timed alternately in the same run.
func BenchmarkTrace(b *testing.B) {
	n := benchResources(b)
	srv := natstest.RunServer(b)
	nc := natstest.Connect(b, srv.ClientURL())
	svcConn := natstest.Connect(b, srv.ClientURL())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, store := benchStream(b, ctx, nc)
	// The traced resource: seven events of one correlation id, written to the stream. The
	// service applies them itself.
	correlation := uuid.New()
	events := tracedHistory(b, correlation)
	stored, err := resourcestore.ToStore(events)
	if err != nil {
		b.Fatal(err)
	}
	written, err := store.Append(ctx, resourcestore.Ref(events[0].Meta().AggregateID), 0, stored)
	if err != nil {
		b.Fatal(err)
	}
	svc, err := New(svcConn, Options{NoSnapshots: true}, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	testkit.WaitFor(b, ctx, "the query service's readiness", func() bool {
		return svc.Ready(ctx) == nil && svc.Model().Sequence() == written.LastSequence
	})
	// The rest of the model, after the stream's head: only its index entries matter to trace.
	applyFleet(b, svc.Model(), written.LastSequence, 1, n)

	req, _ := json.Marshal(api.Trace{CorrelationID: correlation.String()})
	client := natstest.Connect(b, srv.ClientURL())
	reply, err := client.Request(api.QuerySubject(api.QueryTrace), req, 10*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	var tr api.TraceReply
	if err := json.Unmarshal(reply.Data, &tr); err != nil || len(tr.Events) != 7 || tr.Events[6].Sequence != written.LastSequence {
		b.Fatalf("trace: %v %s", err, reply.Data)
	}
	floorReply := reply.Data
	sub, err := nc.Subscribe("bench.floor", func(m *nats.Msg) { _ = m.Respond(floorReply) })
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	stream, err := jetstream.New(client)
	if err != nil {
		b.Fatal(err)
	}
	events7, err := stream.Stream(ctx, store.Config().Stream)
	if err != nil {
		b.Fatal(err)
	}
	directGets := func() {
		var wg sync.WaitGroup
		for s := written.FirstSequence; s <= written.LastSequence; s++ {
			wg.Go(func() {
				if _, err := events7.GetMsg(ctx, s); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	var traceTimes, floorTimes, getTimes []time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := client.Request(api.QuerySubject(api.QueryTrace), req, 10*time.Second); err != nil {
			b.Fatal(err)
		}
		traceTimes = append(traceTimes, time.Since(start))
		start = time.Now()
		if _, err := client.Request("bench.floor", req, 10*time.Second); err != nil {
			b.Fatal(err)
		}
		floorTimes = append(floorTimes, time.Since(start))
		start = time.Now()
		directGets()
		getTimes = append(getTimes, time.Since(start))
	}
	b.StopTimer()
	median := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	t, f, g := median(traceTimes), median(floorTimes), median(getTimes)
	b.ReportMetric(float64(t.Microseconds()), "trace-p50-us")
	b.ReportMetric(float64(f.Microseconds()), "floor-p50-us")
	b.ReportMetric(float64(g.Microseconds()), "get7-p50-us")
	b.ReportMetric(t.Seconds()/f.Seconds(), "trace/floor")
	b.ReportMetric(t.Seconds()/(f+g).Seconds(), "trace/(floor+get7)")
	b.ReportMetric(float64(len(floorReply)), "reply-bytes")
}

// tracedHistory is seven events of one new resource, all of correlation id c, each caused by
// the previous command.
func tracedHistory(tb testing.TB, c uuid.UUID) []cr.Event {
	id, cause := uuid.New(), c
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	meta := func() cr.EventMeta {
		cmd := uuid.New()
		m := cr.EventMeta{EventID: uuid.New(), AggregateID: id, CommandID: cmd, CorrelationID: c, CausationID: cause, Timestamp: ts}
		cause, ts = cmd, ts.Add(time.Second)
		return m
	}
	host, err := cr.ParseHostname("traced.example.com")
	if err != nil {
		tb.Fatal(err)
	}
	man, model, serial := "Dell", "R650", "SN-TRACED"
	return []cr.Event{
		cr.ResourceRegistered{EventMeta: meta(), Hostname: host, Type: cr.ResourceTypes()[0]},
		cr.HardwareDetailsSet{EventMeta: meta(), Manufacturer: &man, Model: &model, SerialNumber: &serial},
		cr.AssetTagAssigned{EventMeta: meta(), AssetTag: "AT-TRACED"},
		cr.OwnerAssigned{EventMeta: meta(), OwnerID: cr.PersonID(uuid.New())},
		cr.MetadataUpdated{EventMeta: meta(), Key: "batch", Value: "traced"},
		cr.MetadataUpdated{EventMeta: meta(), Key: "rack", Value: "r1"},
		cr.StatusChanged{EventMeta: meta(), From: cr.StatusProvisioning, To: cr.StatusDecommissioned},
	}
}
