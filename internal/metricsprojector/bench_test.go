package metricsprojector

import (
	"context"
	"sync"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/internal/workload"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

const benchEvents = 100_000

// fillStream writes about n events of a random valid history over n/20 resources, appending the
// resources' streams concurrently (each in order).
func fillStream(b *testing.B, ctx context.Context, store *jetstore.Store, n int) uint64 {
	b.Helper()
	g := workload.New(99, n/20)
	states := map[uuid.UUID]cr.State{}
	byResource := map[uuid.UUID][][]jetstore.Event{}
	var order []uuid.UUID
	for count := 0; count < n; {
		c := g.Next()
		id := c.AggregateID()
		evs, err := cr.Decide(states[id], c)
		if err != nil {
			b.Fatal(err)
		}
		states[id] = cr.Fold(states[id], evs...)
		stored, err := resourcestore.ToStore(evs)
		if err != nil {
			b.Fatal(err)
		}
		if _, ok := byResource[id]; !ok {
			order = append(order, id)
		}
		byResource[id] = append(byResource[id], stored)
		count += len(evs)
	}
	ids := make(chan uuid.UUID)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for id := range ids {
				var last uint64
				for _, evs := range byResource[id] {
					res, err := store.Append(ctx, resourcestore.Ref(id), last, evs)
					if err != nil {
						b.Error(err)
						return
					}
					last = res.LastSequence
				}
			}
		})
	}
	for _, id := range order {
		ids <- id
	}
	close(ids)
	wg.Wait()
	head, err := store.LastSequence(ctx)
	if err != nil {
		b.Fatal(err)
	}
	return head
}

// BenchmarkReplay compares, on the same stream in the same run, the projector's start-up replay
// (ordered consumer, decode, fold) and its consumer phase (durable consumer, runner, sink, acks)
// with a raw ordered-consumer read of every message. It also times jetstore.ReadAll doing nothing
// with the events, the read the replay was first built on.
func BenchmarkReplay(b *testing.B) {
	srv := natstest.RunServer(b)
	nc := natstest.Connect(b, srv.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	store, err := jetstore.New(js, jetstore.Config{})
	if err != nil {
		b.Fatal(err)
	}
	if err := store.EnsureStream(ctx); err != nil {
		b.Fatal(err)
	}
	head := fillStream(b, ctx, store, benchEvents)
	stream, err := js.Stream(ctx, jetstore.DefaultStream)
	if err != nil {
		b.Fatal(err)
	}

	var raw, readAll, replay, consume time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		raw += timeRawRead(b, ctx, js, head)

		start := time.Now()
		if err := store.ReadAll(ctx, 1, func(jetstore.RecordedEvent) error { return nil }); err != nil {
			b.Fatal(err)
		}
		readAll += time.Since(start)

		p, err := New(js, Options{}, zerolog.Nop(), prometheus.NewRegistry())
		if err != nil {
			b.Fatal(err)
		}
		r := &replayer{p: p, stream: stream}
		start = time.Now()
		if err := r.replayToHead(ctx); err != nil {
			b.Fatal(err)
		}
		replay += time.Since(start)
		if p.Sequence() != head {
			b.Fatalf("replayed to %d, head %d", p.Sequence(), head)
		}

		// The raw read again, after the replay, so that load from elsewhere on a shared machine
		// weighs on both sides alike.
		raw += timeRawRead(b, ctx, js, head)

		consume += timeConsumer(b, ctx, js, head)
	}
	raw /= 2
	b.StopTimer()
	n := float64(head) * float64(b.N)
	b.ReportMetric(n/raw.Seconds(), "raw-events/s")
	b.ReportMetric(n/readAll.Seconds(), "readall-events/s")
	b.ReportMetric(n/replay.Seconds(), "replay-events/s")
	b.ReportMetric(n/consume.Seconds(), "consumer-events/s")
	b.ReportMetric(raw.Seconds()/replay.Seconds(), "replay/raw")
	b.ReportMetric(raw.Seconds()/consume.Seconds(), "consumer/raw")
}

// timeRawRead reads every message with an ordered consumer and does nothing with it.
func timeRawRead(b *testing.B, ctx context.Context, js jetstream.JetStream, head uint64) time.Duration {
	b.Helper()
	start := time.Now()
	cons, err := js.OrderedConsumer(ctx, jetstore.DefaultStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	it, err := cons.Messages()
	if err != nil {
		b.Fatal(err)
	}
	defer it.Stop()
	for {
		m, err := it.Next()
		if err != nil {
			b.Fatal(err)
		}
		md, err := m.Metadata()
		if err != nil {
			b.Fatal(err)
		}
		if md.Sequence.Stream == head {
			return time.Since(start)
		}
	}
}

// timeConsumer runs a fresh projector's consumer phase (no snapshot, no replay) from the first
// event to the head.
func timeConsumer(b *testing.B, ctx context.Context, js jetstream.JetStream, head uint64) time.Duration {
	b.Helper()
	p, err := New(js, Options{Name: "bench", FetchWait: 100 * time.Millisecond}, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	if err := p.runner.ResetConsumer(ctx); err != nil {
		b.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- p.runner.Run(runCtx) }()
	// A fine poll of its own, not testkit.WaitFor, whose pauses grow: the pause adds to the figure.
	for p.Sequence() < head {
		select {
		case err := <-done:
			b.Fatalf("projector stopped at sequence %d of %d: %v", p.Sequence(), head, err)
		case <-ctx.Done():
			b.Fatalf("at sequence %d of %d: %v", p.Sequence(), head, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	took := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return took
}
