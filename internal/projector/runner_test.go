package projector

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/testkit"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

// memSink is a read model kept in memory that honours the Sink contract: skip at or below the
// checkpoint, apply the rest, move the checkpoint, all under one lock.
type memSink struct {
	mu         sync.Mutex
	checkpoint uint64
	applied    map[uint64]int // sequence -> times applied
	order      []uint64
	poison     map[string]bool   // payloads that can never be applied
	failures   int               // transient failures still to return
	delivered  map[uint64]uint64 // sequence -> NumDelivered of the delivery applied
}

func newMemSink() *memSink {
	return &memSink{applied: map[uint64]int{}, poison: map[string]bool{}, delivered: map[uint64]uint64{}}
}

func (s *memSink) Apply(_ context.Context, batch []Delivery) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures > 0 {
		s.failures--
		return errors.New("read model unreachable")
	}
	for _, d := range batch {
		if s.poison[string(d.Data)] {
			return Poison(d.Sequence, fmt.Errorf("payload %q is not an event", d.Data))
		}
	}
	for _, d := range batch {
		if d.Sequence <= s.checkpoint {
			continue
		}
		s.applied[d.Sequence]++
		s.delivered[d.Sequence] = d.NumDelivered
		s.order = append(s.order, d.Sequence)
		s.checkpoint = d.Sequence
	}
	return nil
}

func (s *memSink) Checkpoint(context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkpoint, nil
}

func (s *memSink) snapshot() (uint64, map[uint64]int, []uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[uint64]int, len(s.applied))
	for k, v := range s.applied {
		m[k] = v
	}
	return s.checkpoint, m, append([]uint64(nil), s.order...)
}

func setup(t *testing.T) (jetstream.JetStream, context.Context) {
	t.Helper()
	return setupOn(t, natstest.RunServer(t))
}

// setupOn connects to srv and creates the event stream.
func setupOn(t *testing.T, srv *natstest.Node) (jetstream.JetStream, context.Context) {
	t.Helper()
	nc := natstest.Connect(t, srv.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "CIM_EVENTS", Subjects: []string{"cim.evt.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	return js, ctx
}

func publishN(t *testing.T, ctx context.Context, js jetstream.JetStream, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if _, err := js.Publish(ctx, "cim.evt.test.a"+strconv.Itoa(i%7), []byte("event-"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
}

func startRunner(t *testing.T, ctx context.Context, js jetstream.JetStream, sink Sink, reg prometheus.Registerer) (*Runner, func()) {
	t.Helper()
	r, err := New(js, sink, Config{Name: "test", BatchSize: 16, FetchWait: 100 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}, zerolog.Nop(), NewMetrics(reg, "test"))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	return r, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}
}

func TestRunnerAppliesEveryEventOnceInOrderAcrossRestarts(t *testing.T) {
	js, ctx := setup(t)
	sink := newMemSink()
	publishN(t, ctx, js, 0, 100)

	reg := prometheus.NewRegistry()
	r, stop := startRunner(t, ctx, js, sink, reg)
	testkit.WaitFor(t, ctx, "first 100 events", func() bool { cp, _, _ := sink.snapshot(); return cp == 100 })
	if err := r.Ready(ctx); err != nil {
		t.Fatalf("ready: %v", err)
	}
	stop()

	publishN(t, ctx, js, 100, 50)
	_, stop = startRunner(t, ctx, js, sink, prometheus.NewRegistry())
	testkit.WaitFor(t, ctx, "150 events", func() bool { cp, _, _ := sink.snapshot(); return cp == 150 })
	stop()

	_, applied, order := sink.snapshot()
	if len(applied) != 150 {
		t.Fatalf("applied %d distinct events, want 150", len(applied))
	}
	for seq, n := range applied {
		if n != 1 {
			t.Errorf("event %d applied %d times", seq, n)
		}
	}
	for i := 1; i < len(order); i++ {
		if order[i] <= order[i-1] {
			t.Fatalf("out of order at %d: %d after %d", i, order[i], order[i-1])
		}
	}
	if got := testutil.ToFloat64(r.metrics.applied); got != 100 {
		t.Errorf("first run applied metric = %v, want 100", got)
	}
}

func TestRunnerRedeliveryBelowCheckpointIsSkipped(t *testing.T) {
	js, ctx := setup(t)
	sink := newMemSink()
	publishN(t, ctx, js, 0, 20)
	// The sink already holds the first 10 events, as if a crash came after its commit and
	// before the ack: they are delivered again and must not count twice.
	for i := uint64(1); i <= 10; i++ {
		sink.applied[i] = 1
	}
	sink.checkpoint = 10
	_, stop := startRunner(t, ctx, js, sink, prometheus.NewRegistry())
	testkit.WaitFor(t, ctx, "20 events", func() bool { cp, _, _ := sink.snapshot(); return cp == 20 })
	stop()
	_, applied, _ := sink.snapshot()
	for seq := uint64(1); seq <= 20; seq++ {
		if applied[seq] != 1 {
			t.Errorf("event %d applied %d times, want 1", seq, applied[seq])
		}
	}
}

func TestRunnerDeadLettersPoisonAndGoesOn(t *testing.T) {
	js, ctx := setup(t)
	sink := newMemSink()
	sink.poison["event-5"] = true
	publishN(t, ctx, js, 0, 10)
	reg := prometheus.NewRegistry()
	r, stop := startRunner(t, ctx, js, sink, reg)
	testkit.WaitFor(t, ctx, "10 events", func() bool { cp, _, _ := sink.snapshot(); return cp == 10 })
	stop()
	_, applied, _ := sink.snapshot()
	if len(applied) != 9 || applied[6] != 0 {
		t.Fatalf("applied %v, want every event but sequence 6", applied)
	}
	if got := testutil.ToFloat64(r.metrics.deadLetters); got != 1 {
		t.Errorf("dead letters metric = %v, want 1", got)
	}
	dlq, err := js.Stream(ctx, "CIM_DLQ")
	if err != nil {
		t.Fatal(err)
	}
	m, err := dlq.GetLastMsgForSubject(ctx, "cim.dlq.test")
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "event-5" || m.Header.Get(HeaderDLQStreamSeq) != "6" || m.Header.Get(HeaderDLQReason) == "" {
		t.Fatalf("dead letter = %q headers %v", m.Data, m.Header)
	}
}

func TestRunnerRetriesTransientFailuresAndReportsNotReady(t *testing.T) {
	js, ctx := setup(t)
	sink := newMemSink()
	sink.failures = 1 << 30 // down until told otherwise
	publishN(t, ctx, js, 0, 5)
	r, stop := startRunner(t, ctx, js, sink, prometheus.NewRegistry())
	testkit.WaitFor(t, ctx, "not ready", func() bool { return r.Ready(ctx) != nil && testutil.ToFloat64(r.metrics.applyErrors) > 2 })
	sink.mu.Lock()
	sink.failures = 0
	sink.mu.Unlock()
	testkit.WaitFor(t, ctx, "5 events", func() bool { cp, _, _ := sink.snapshot(); return cp == 5 })
	testkit.WaitFor(t, ctx, "ready", func() bool { return r.Ready(ctx) == nil })
	stop()
	if err := r.Ready(ctx); err == nil {
		t.Error("ready after stop")
	}
}

func TestRunnerLagWhileBehind(t *testing.T) {
	js, ctx := setup(t)
	sink := newMemSink()
	publishN(t, ctx, js, 0, 64)
	r, err := New(js, sink, Config{Name: "lag", BatchSize: 16, FetchWait: 100 * time.Millisecond}, zerolog.Nop(), NewMetrics(prometheus.NewRegistry(), "lag"))
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, "CIM_EVENTS", r.ConsumerConfig())
	if err != nil {
		t.Fatal(err)
	}
	batch, err := r.fetch(ctx, cons)
	if err != nil || len(batch) != 16 {
		t.Fatalf("fetch: %d events, %v", len(batch), err)
	}
	if !r.applyBatch(ctx, batch) {
		t.Fatal("apply did not finish")
	}
	if got := testutil.ToFloat64(r.metrics.lagEvents); got != 48 {
		t.Errorf("lag = %v events, want 48", got)
	}
	if got := testutil.ToFloat64(r.metrics.lastSeq); got != 16 {
		t.Errorf("last applied = %v, want 16", got)
	}
}

// An event appended with an expected-sequence condition (as the event store appends) keeps that
// header in the stream; its dead letter must not carry it, or the dead-letter stream refuses it.
func TestRunnerDeadLettersEventsAppendedWithConditions(t *testing.T) {
	js, ctx := setup(t)
	sink := newMemSink()
	sink.poison["conditional"] = true
	publishN(t, ctx, js, 0, 3)
	first, err := js.Publish(ctx, "cim.evt.test.cond", []byte("event-3"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "cim.evt.test.cond", []byte("conditional"),
		jetstream.WithExpectLastSequencePerSubject(first.Sequence), jetstream.WithMsgID("event-id-1")); err != nil {
		t.Fatal(err)
	}
	publishN(t, ctx, js, 4, 3)
	_, stop := startRunner(t, ctx, js, sink, prometheus.NewRegistry())
	testkit.WaitFor(t, ctx, "8 events", func() bool { cp, _, _ := sink.snapshot(); return cp == 8 })
	stop()
	dlq, err := js.Stream(ctx, "CIM_DLQ")
	if err != nil {
		t.Fatal(err)
	}
	m, err := dlq.GetLastMsgForSubject(ctx, "cim.dlq.test")
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "conditional" || m.Header.Get(HeaderDLQStreamSeq) != "5" {
		t.Fatalf("dead letter = %q headers %v", m.Data, m.Header)
	}
}

// A replica that died holding a batch leaves it unacknowledged; the server redelivers it only
// after the ack wait, while newer events are delivered at once. The sink must still receive
// every event in stream order: none may be skipped below a checkpoint that newer events moved.
func TestRunnerKeepsStreamOrderWhenADeadReplicaHeldEvents(t *testing.T) {
	js, ctx := setup(t)
	sink := newMemSink()
	publishN(t, ctx, js, 0, 40)
	cfg := Config{Name: "test", BatchSize: 16, FetchWait: 100 * time.Millisecond, AckWait: time.Second, MaxBackoff: 50 * time.Millisecond}
	r, err := New(js, sink, cfg, zerolog.New(zerolog.NewTestWriter(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, "CIM_EVENTS", r.ConsumerConfig())
	if err != nil {
		t.Fatal(err)
	}
	// The dead replica: it fetched the first events and never acknowledged them.
	mb, err := cons.Fetch(5, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for range mb.Messages() {
		held++
	}
	if held != 5 {
		t.Fatalf("the dead replica fetched %d events, want 5", held)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	testkit.WaitFor(t, ctx, "40 events", func() bool { cp, _, _ := sink.snapshot(); return cp == 40 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_, applied, order := sink.snapshot()
	for seq := uint64(1); seq <= 40; seq++ {
		if applied[seq] != 1 {
			t.Errorf("event %d applied %d times, want 1", seq, applied[seq])
		}
	}
	for i := 1; i < len(order); i++ {
		if order[i] <= order[i-1] {
			t.Fatalf("out of order at %d: %d after %d", i, order[i], order[i-1])
		}
	}
}
