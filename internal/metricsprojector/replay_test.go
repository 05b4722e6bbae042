package metricsprojector

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// consumerNames lists the consumers of stream.
func consumerNames(t *testing.T, e *env, stream jetstream.Stream) []string {
	t.Helper()
	var names []string
	lister := stream.ListConsumers(e.ctx)
	for info := range lister.Info() {
		names = append(names, info.Name)
	}
	if err := lister.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// TestReplayReplacesALeftoverAndLeavesNoConsumer: a replay consumer left by an earlier run (which
// crashed mid-replay, from another start sequence) is replaced, the replay reads exactly the events
// after the state's sequence, and its consumer is gone afterwards.
func TestReplayReplacesALeftoverAndLeavesNoConsumer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 21, 40)
	e.write(150)
	opts := defaultTestOptions()
	reg := prometheus.NewRegistry()
	p, err := New(e.js, opts, zerolog.Nop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := e.js.Stream(e.ctx, p.opts.Stream)
	if err != nil {
		t.Fatal(err)
	}
	r := &replayer{p: p, stream: stream}
	name := r.replayConsumer()
	if name != "projector-metrics-replay" {
		t.Fatalf("replay consumer %q, want projector-metrics-replay (the name the permission table grants)", name)
	}
	if _, err := e.js.CreateConsumer(e.ctx, p.opts.Stream, jetstream.ConsumerConfig{
		Name: name, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: e.head / 2,
		AckPolicy: jetstream.AckNonePolicy, MemoryStorage: true,
	}); err != nil {
		t.Fatal(err)
	}

	if err := r.replayToHead(e.ctx); err != nil {
		t.Fatal(err)
	}
	if p.Sequence() != e.head {
		t.Fatalf("replayed to %d, head %d", p.Sequence(), e.head)
	}
	e.exp.check(t, gatherFigures(t, reg))
	if names := consumerNames(t, e, stream); len(names) != 0 {
		t.Errorf("after the replay the stream has consumers %v, want none", names)
	}
}

// TestReplayOfDeletedEventsEnds: when every event from the state's sequence to the head is gone,
// the replay has nothing to read and ends instead of waiting for a message.
func TestReplayOfDeletedEventsEnds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 22, 10)
	const name = "REPLAY_DELETED"
	stream, err := e.js.CreateStream(e.ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"replaydeleted.>"}})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := e.js.Publish(e.ctx, "replaydeleted.x", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Purge(e.ctx); err != nil {
		t.Fatal(err)
	}
	opts := defaultTestOptions()
	opts.Stream = name
	p, err := New(e.js, opts, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	r := &replayer{p: p, stream: stream}
	if err := r.replayToHead(e.ctx); err != nil {
		t.Fatal(err)
	}
	if p.Sequence() != 0 {
		t.Errorf("replayed to %d, want 0 (nothing to apply)", p.Sequence())
	}
	if names := consumerNames(t, e, stream); len(names) != 0 {
		t.Errorf("after the replay the stream has consumers %v, want none", names)
	}
}
