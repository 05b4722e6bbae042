package faults

import (
	"context"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/metricsprojector"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/internal/workload"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// TestMetricsProjectorRestartsLeaveNoConsumers starts and stops the metrics projector a few
// times over a stream with events: each start replays, and whatever the replay reads with must
// be gone from the server when it is done, so that restarts (a crash loop, a rolling update)
// do not pile up consumers. Only the durable consumer stays.
func TestMetricsProjectorRestartsLeaveNoConsumers(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := natstest.RunServer(t)
	js, err := jetstream.New(natstest.Connect(t, srv.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	store, err := jetstore.New(js, jetstore.Config{}, jetstore.WithUpcasters(resourcestore.Upcasters()...))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	g := workload.New(7, 5)
	var last uint64
	for range 30 {
		cmd := g.Next()
		loaded, err := store.Load(ctx, resourcestore.Ref(cmd.AggregateID()))
		if err != nil {
			t.Fatal(err)
		}
		state, err := resourcestore.FoldStored(cr.State{}, loaded.Events)
		if err != nil {
			t.Fatal(err)
		}
		decided, err := cr.Decide(state, cmd)
		if err != nil {
			t.Fatal(err)
		}
		events, err := resourcestore.ToStore(decided)
		if err != nil {
			t.Fatal(err)
		}
		res, err := store.Append(ctx, resourcestore.Ref(cmd.AggregateID()), loaded.LastSequence, events)
		if err != nil {
			t.Fatal(err)
		}
		last = res.LastSequence
	}

	for round := range 3 {
		// A fresh snapshot bucket each time, so that every start replays the whole stream.
		p, err := metricsprojector.New(js, metricsprojector.Options{Bucket: "SNAP_" + string(rune('A'+round))},
			zerolog.Nop(), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- p.Run(rctx) }()
		// Caught up, and on its durable consumer.
		for p.Sequence() < last || p.Ready(ctx) != nil {
			if ctx.Err() != nil {
				t.Fatalf("round %d: projector at %d, want %d", round, p.Sequence(), last)
			}
			time.Sleep(20 * time.Millisecond)
		}
		stop()
		if err := <-done; err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	var names []string
	for info := range mustStream(t, ctx, js).ListConsumers(ctx).Info() {
		names = append(names, info.Name)
	}
	if len(names) != 1 || names[0] != "projector-"+metricsprojector.DefaultName {
		t.Fatalf("after 3 starts and stops of the metrics projector the event stream has consumers %v; want only its durable one", names)
	}
}

func mustStream(t *testing.T, ctx context.Context, js jetstream.JetStream) jetstream.Stream {
	t.Helper()
	s, err := js.Stream(ctx, jetstore.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
