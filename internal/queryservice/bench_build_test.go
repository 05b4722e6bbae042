package queryservice

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// benchBuildResources is the number of resources whose histories the build benchmark writes to
// the stream: CIM_BENCH_QUERY_BUILD_RESOURCES, default 20,000 (seven events each).
func benchBuildResources(b *testing.B) int {
	if v := os.Getenv("CIM_BENCH_QUERY_BUILD_RESOURCES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			b.Fatalf("CIM_BENCH_QUERY_BUILD_RESOURCES=%q: want a number of at least 100", v)
		}
		return n
	}
	return 20000
}

// BenchmarkBuild writes n resources' histories to the event stream, then times, alternately in
// the same run: a raw ordered-consumer read of every event (the floor of any reader of the
// stream), an instance building its model from the stream until it is ready, and loading the
// model from a snapshot of the same history. build/raw-rate is the build's event rate as a
// share of the raw read's (target at least 0.5); replay/snapshot is how many times faster a
// snapshot starts than a replay (target at least 10).
func BenchmarkBuild(b *testing.B) {
	n := benchBuildResources(b)
	srv := natstest.RunServer(b)
	nc := natstest.Connect(b, srv.ClientURL())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	js, store := benchStream(b, ctx, nc)
	head := writeFleet(b, ctx, nc, store, n)

	opts := Options{NoSnapshots: true}
	opts.fillDefaults()
	var raw, build, snapshot time.Duration
	b.ResetTimer()
	for range b.N {
		// Each phase starts with the garbage of the ones before it collected (the snapshot's
		// encoding, the previous round's models), so that it pays for the collections of its
		// own allocations only.
		runtime.GC()
		start := time.Now()
		if got := readAll(b, ctx, js, opts.Stream, head); got != head {
			b.Fatalf("raw read: %d events, want %d", got, head)
		}
		raw += time.Since(start)

		runtime.GC()
		start = time.Now()
		m := buildInstance(b, ctx, srv.ClientURL())
		build += time.Since(start)
		if m.Sequence() != head || m.Resources() != n {
			b.Fatalf("model at %d with %d resources, want %d and %d", m.Sequence(), m.Resources(), head, n)
		}

		b.StopTimer()
		snaps, err := openSnapshots(ctx, js, "BENCH_SNAPSHOTS", 1)
		if err != nil {
			b.Fatal(err)
		}
		stream, err := js.Stream(ctx, opts.Stream)
		if err != nil {
			b.Fatal(err)
		}
		id := streamIdentity{name: stream.CachedInfo().Config.Name, created: stream.CachedInfo().Created}
		if _, err := snaps.save(ctx, m.View(), id); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		b.StartTimer()
		start = time.Now()
		restored := NewModel()
		seq, err := snaps.load(ctx, restored, id, head)
		snapshot += time.Since(start)
		if err != nil || seq != head || restored.Resources() != n {
			b.Fatalf("snapshot load: sequence %d, %d resources, %v", seq, restored.Resources(), err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(head)/raw.Seconds()*float64(b.N), "raw-events/s")
	b.ReportMetric(float64(head)/build.Seconds()*float64(b.N), "build-events/s")
	b.ReportMetric(raw.Seconds()/build.Seconds(), "build/raw-rate")
	b.ReportMetric(build.Seconds()/snapshot.Seconds(), "replay/snapshot")
	b.ReportMetric(float64(head), "events")
}

// writeFleet writes n benchFleet histories to the empty event stream and returns the stream's
// last sequence. It publishes each event's jetstore.EventMessage asynchronously, a window of
// them in flight: the messages Append would store, without an atomic batch per resource (each
// makes the server set up a store of its own), so a large fleet is written in a short time.
func writeFleet(b *testing.B, ctx context.Context, nc *nats.Conn, store *jetstore.Store, n int) uint64 {
	b.Helper()
	var failures atomic.Int64
	var firstErr atomic.Value
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
		failures.Add(1)
		firstErr.CompareAndSwap(nil, fmt.Errorf("publish on %s: %w", m.Subject, err))
	}))
	if err != nil {
		b.Fatal(err)
	}
	const window = 2048
	fleet := newBenchFleet()
	var events uint64
	for i := range n {
		evs := fleet.history(b, i)
		stored, err := resourcestore.ToStore(evs)
		if err != nil {
			b.Fatal(err)
		}
		ref := resourcestore.Ref(evs[0].Meta().AggregateID)
		for _, ev := range stored {
			m, err := store.EventMessage(ref, ev)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := js.PublishMsgAsync(m); err != nil {
				b.Fatal(err)
			}
			events++
		}
		if js.PublishAsyncPending() >= window {
			waitPublished(b, ctx, js)
		}
	}
	waitPublished(b, ctx, js)
	if f := failures.Load(); f > 0 {
		b.Fatalf("%d of %d events not written, the first: %v", f, events, firstErr.Load())
	}
	stream, err := js.Stream(ctx, jetstore.DefaultStream)
	if err != nil {
		b.Fatal(err)
	}
	if st := stream.CachedInfo().State; st.Msgs != events || st.LastSeq != events {
		b.Fatalf("stream holds %d messages up to sequence %d, want %d", st.Msgs, st.LastSeq, events)
	}
	return events
}

// waitPublished waits for the acknowledgements of every asynchronous publish of js.
func waitPublished(b *testing.B, ctx context.Context, js jetstream.JetStream) {
	b.Helper()
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		b.Fatal(ctx.Err())
	case <-time.After(time.Minute):
		b.Fatalf("%d publishes unacknowledged after a minute", js.PublishAsyncPending())
	}
}

// readAll reads the stream from the first event with an ordered consumer until it has head
// events, and returns how many it read.
func readAll(b *testing.B, ctx context.Context, js jetstream.JetStream, stream string, head uint64) uint64 {
	b.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	it, err := cons.Messages()
	if err != nil {
		b.Fatal(err)
	}
	defer it.Stop()
	var read uint64
	for read < head {
		if _, err := it.Next(jetstream.NextContext(ctx)); err != nil {
			b.Fatalf("raw read after %d events: %v", read, err)
		}
		read++
	}
	return read
}

// buildInstance runs an instance without snapshots until its model has caught up with the
// stream, stops it and returns its model.
func buildInstance(b *testing.B, ctx context.Context, url string) *Model {
	b.Helper()
	nc := natstest.Connect(b, url)
	defer nc.Close()
	svc, err := New(nc, Options{NoSnapshots: true}, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	select {
	case <-svc.follower.caughtUp():
	case err := <-done:
		b.Fatalf("run ended before the model caught up: %v", err)
	case <-ctx.Done():
		b.Fatal("the model did not catch up in 10 minutes")
	}
	stop()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return svc.Model()
}
