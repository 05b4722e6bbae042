package neo4jprojector

import (
	"context"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/projector"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkReplay replays the same stream, in the same run, three ways: a raw JetStream consumer
// read (the floor), the projector with one Neo4j transaction per batch (the service), and the
// projector with one transaction per event (the baseline batching must beat). Each projection is
// checked to give the exact graph. Run it with
//
//	source scripts/neo4j-start && go test ./internal/neo4jprojector -run '^$' -bench Replay -benchtime 1x
func BenchmarkReplay(b *testing.B) {
	e := newEnv(b, 41, 300)
	e.appendEvents(3000)
	events := float64(e.hist.last)
	want := e.hist.want(b)
	cfg := testRunnerConfig()
	cfg.BatchSize = DefaultBatchSize
	// Warm-up: Neo4j plans every statement once and its JIT compiles; neither belongs to a rate.
	e.timedReplay(cfg, false, want)
	b.ResetTimer()
	var raw, batched, perEvent time.Duration
	for range b.N {
		raw += e.rawRead(events)
		batched += e.timedReplay(cfg, false, want)
		perEvent += e.timedReplay(cfg, true, want)
	}
	n := float64(b.N)
	b.ReportMetric(events*n/raw.Seconds(), "raw_events/s")
	b.ReportMetric(events*n/batched.Seconds(), "batched_events/s")
	b.ReportMetric(events*n/perEvent.Seconds(), "per_event_tx_events/s")
	b.ReportMetric(perEvent.Seconds()/batched.Seconds(), "batched_speedup_x")
	b.ReportMetric(batched.Seconds()/raw.Seconds(), "batched_vs_raw_slowdown_x")
}

// rawRead reads the whole stream with a plain pull consumer and returns how long it took.
func (e *env) rawRead(events float64) time.Duration {
	e.t.Helper()
	start := time.Now()
	cons, err := e.js.OrderedConsumer(e.ctx, "CIM_EVENTS", jetstream.OrderedConsumerConfig{})
	if err != nil {
		e.t.Fatal(err)
	}
	for read := 0; float64(read) < events; {
		mb, err := cons.Fetch(min(DefaultBatchSize, int(events)-read), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			e.t.Fatal(err)
		}
		for range mb.Messages() {
			read++
		}
		if err := mb.Error(); err != nil {
			e.t.Fatal(err)
		}
	}
	return time.Since(start)
}

// timedReplay empties the graph, replays the whole stream into it and returns how long the
// replay took, from the runner's start to its last batch.
func (e *env) timedReplay(cfg projector.Config, txPerEvent bool, want graph) time.Duration {
	e.t.Helper()
	sink := e.newSink()
	sink.txPerEvent = txPerEvent
	r := e.newReplica(e.connect(), sink, cfg)
	if err := r.runner.ResetConsumer(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	if err := EmptyGraph(e.ctx, e.driver, "", DefaultCheckpointName); err != nil {
		e.t.Fatal(err)
	}
	start := time.Now()
	r.run()
	for r.runner.LastApplied() < e.hist.last {
		if e.ctx.Err() != nil {
			e.t.Fatal("replay timed out")
		}
		time.Sleep(2 * time.Millisecond)
	}
	took := time.Since(start)
	r.stop()
	requireSameGraph(e.t, want, readGraph(e.t, context.Background(), e.driver))
	return took
}
