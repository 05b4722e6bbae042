package projector

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/testkit"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

// killedHolder plays a process that fetched n deliveries of the consumer (in priority group
// group, if any) on its own connection and was killed before acknowledging them: its connection
// is closed, its deliveries stay outstanding until their ack wait (30 s by default) ends.
func killedHolder(t *testing.T, ctx context.Context, srv *natstest.Node, r *Runner, group string, n int) {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, srv.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, r.cfg.Stream, r.ConsumerConfig())
	if err != nil {
		t.Fatal(err)
	}
	opts := []jetstream.FetchOpt{jetstream.FetchMaxWait(5 * time.Second)}
	if group != "" {
		opts = append(opts, jetstream.FetchPriorityGroup(group))
	}
	mb, err := cons.Fetch(n, opts...)
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for range mb.Messages() {
		held++
	}
	if held != n {
		t.Fatalf("the killed process fetched %d deliveries, want %d", held, n)
	}
	js.Conn().Close()
}

// requireFirstDeliveries checks that the sink applied events from..to once each, in order, each
// at its first delivery: nothing waited for a redelivery (the expiry of an ack wait).
func requireFirstDeliveries(t *testing.T, sink *memSink, from, to uint64) {
	t.Helper()
	_, applied, order := sink.snapshot()
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for seq := from; seq <= to; seq++ {
		if applied[seq] != 1 {
			t.Errorf("event %d applied %d times, want 1", seq, applied[seq])
		}
		if n := sink.delivered[seq]; n != 1 {
			t.Errorf("event %d applied at its delivery number %d: it waited for a redelivery", seq, n)
		}
	}
	for i := 1; i < len(order); i++ {
		if order[i] <= order[i-1] {
			t.Fatalf("out of order at %d: %d after %d", i, order[i], order[i-1])
		}
	}
}

func runWith(t *testing.T, ctx context.Context, r *Runner, run func(context.Context) error) {
	t.Helper()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(rctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
}

// A process killed after its read model committed a batch and before it acknowledged it: the
// restarted process goes on at once with the next events (its read model holds the outstanding
// ones), with the default ack wait and without resetting the consumer.
func TestRestartedRunnerGoesOnPastDeliveriesItsReadModelHolds(t *testing.T) {
	srv := natstest.RunServer(t)
	js, ctx := setupOn(t, srv)
	publishN(t, ctx, js, 0, 40)
	sink := newMemSink()
	r, err := New(js, sink, Config{Name: "test", BatchSize: 16}, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	killedHolder(t, ctx, srv, r, "", 10)
	sink.checkpoint = 10 // committed before the kill
	runWith(t, ctx, r, r.Run)
	testkit.WaitFor(t, ctx, "40 events", func() bool { cp, _, _ := sink.snapshot(); return cp == 40 })
	requireFirstDeliveries(t, sink, 11, 40)
}

// A process killed in the middle of a batch: its read model does not hold the batch. The restarted
// process has the consumer reset to its ack floor and applies everything at once, in order.
func TestRestartedRunnerReclaimsDeliveriesOfAKilledProcess(t *testing.T) {
	srv := natstest.RunServer(t)
	js, ctx := setupOn(t, srv)
	publishN(t, ctx, js, 0, 40)
	sink := newMemSink()
	r, err := New(js, sink, Config{Name: "test", BatchSize: 16, ReclaimHeld: true}, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	killedHolder(t, ctx, srv, r, "", 10)
	runWith(t, ctx, r, r.Run)
	testkit.WaitFor(t, ctx, "40 events", func() bool { cp, _, _ := sink.snapshot(); return cp == 40 })
	requireFirstDeliveries(t, sink, 1, 40)
}

// The fail-over with the production defaults (pinned TTL 10 s, ack wait 30 s): the active
// replica is killed holding a full batch (the most the consumer lets out) and no other event
// comes. The standby takes over once the pin expired, and applies the held events at their first
// delivery: before their ack wait could have ended (that would be their second delivery).
func TestStandbyTakesOverHeldEventsAfterThePinnedTTL(t *testing.T) {
	srv := natstest.RunServer(t)
	js, ctx := setupOn(t, srv)
	publishN(t, ctx, js, 0, 20)
	sink := newMemSink()
	cfg := Config{Name: "test", BatchSize: 20, PriorityGroup: "g", ReclaimHeld: true}
	reg := prometheus.NewRegistry()
	r, err := New(js, sink, cfg, zerolog.Nop(), NewMetrics(reg, "test"))
	if err != nil {
		t.Fatal(err)
	}
	if r.cfg.PinnedTTL >= r.cfg.AckWait {
		t.Fatalf("defaults: pinned TTL %s, ack wait %s; the take-over must come before the ack wait", r.cfg.PinnedTTL, r.cfg.AckWait)
	}
	killedHolder(t, ctx, srv, r, "g", 20)
	runWith(t, ctx, r, r.Run)
	testkit.WaitFor(t, ctx, "ready", func() bool { return r.Ready(ctx) == nil })
	if role := r.Role(); role != RoleStandby {
		t.Fatalf("role %s while the killed replica holds the pin, want standby", role)
	}
	testkit.WaitFor(t, ctx, "20 events", func() bool { cp, _, _ := sink.snapshot(); return cp == 20 })
	requireFirstDeliveries(t, sink, 1, 20)
	if role := r.Role(); role != RoleActive {
		t.Errorf("role %s after the take-over, want active", role)
	}
	if got := testutil.ToFloat64(r.metrics.active); got != 1 {
		t.Errorf("cim_projector_active = %v after the take-over, want 1", got)
	}
}

// One replica is active, the other standby; both are ready, each says which it is.
func TestRolesOfTwoReplicas(t *testing.T) {
	srv := natstest.RunServer(t)
	js, ctx := setupOn(t, srv)
	cfg := Config{Name: "test", BatchSize: 16, FetchWait: 100 * time.Millisecond, PriorityGroup: "g"}
	var runners []*Runner
	var sinks []*memSink
	for range 2 {
		js, err := jetstream.New(natstest.Connect(t, srv.ClientURL()))
		if err != nil {
			t.Fatal(err)
		}
		sink := newMemSink()
		r, err := New(js, sink, cfg, zerolog.Nop(), NewMetrics(prometheus.NewRegistry(), "test"))
		if err != nil {
			t.Fatal(err)
		}
		runWith(t, ctx, r, r.Run)
		runners, sinks = append(runners, r), append(sinks, sink)
	}
	for _, r := range runners {
		testkit.WaitFor(t, ctx, "ready", func() bool { return r.Ready(ctx) == nil })
	}
	publishN(t, ctx, js, 0, 30)
	testkit.WaitFor(t, ctx, "30 events", func() bool {
		a, _, _ := sinks[0].snapshot()
		b, _, _ := sinks[1].snapshot()
		return max(a, b) == 30
	})
	active := 0
	for i, r := range runners {
		cp, _, _ := sinks[i].snapshot()
		role, gauge := r.Role(), testutil.ToFloat64(r.metrics.active)
		if err := r.Ready(ctx); err != nil {
			t.Errorf("replica %d (%s) not ready: %v", i, role, err)
		}
		switch {
		case role == RoleActive && gauge == 1 && cp == 30:
			active++
		case role == RoleStandby && gauge == 0 && cp == 0:
		default:
			t.Errorf("replica %d: role %s, cim_projector_active %v, applied up to %d", i, role, gauge, cp)
		}
	}
	if active != 1 {
		t.Errorf("%d active replicas, want 1", active)
	}
}

// cim_projector_up and readiness follow the NATS connection: 0 while it is down.
func TestUpIsZeroWhileNATSIsDown(t *testing.T) {
	srv := natstest.RunServer(t)
	js, ctx := setupOn(t, srv)
	publishN(t, ctx, js, 0, 5)
	sink := newMemSink()
	r, err := New(js, sink, Config{Name: "test", FetchWait: 100 * time.Millisecond}, zerolog.Nop(), NewMetrics(prometheus.NewRegistry(), "test"))
	if err != nil {
		t.Fatal(err)
	}
	runWith(t, ctx, r, r.Run)
	testkit.WaitFor(t, ctx, "5 events and up", func() bool {
		cp, _, _ := sink.snapshot()
		return cp == 5 && testutil.ToFloat64(r.metrics.up) == 1
	})
	srv.Shutdown()
	testkit.WaitFor(t, ctx, "up 0", func() bool { return testutil.ToFloat64(r.metrics.up) == 0 })
	if err := r.Ready(ctx); !errors.Is(err, ErrNotConsuming) {
		t.Errorf("ready = %v while NATS is down, want ErrNotConsuming", err)
	}
	srv.Restart()
	testkit.WaitFor(t, ctx, "up 1 again", func() bool { return testutil.ToFloat64(r.metrics.up) == 1 })
}

// After a restart, the last applied sequence is the read model's checkpoint before any new event.
func TestLastAppliedIsTheCheckpointFromTheStart(t *testing.T) {
	js, ctx := setup(t)
	publishN(t, ctx, js, 0, 30)
	sink := newMemSink()
	_, stop := startRunner(t, ctx, js, sink, prometheus.NewRegistry())
	testkit.WaitFor(t, ctx, "30 events", func() bool { cp, _, _ := sink.snapshot(); return cp == 30 })
	stop()

	r, stop := startRunner(t, ctx, js, sink, prometheus.NewRegistry())
	defer stop()
	testkit.WaitFor(t, ctx, "ready", func() bool { return r.Ready(ctx) == nil })
	if got := testutil.ToFloat64(r.metrics.lastSeq); got != 30 {
		t.Errorf("cim_projector_last_applied_sequence = %v after the restart, want the checkpoint, 30", got)
	}
	if got := r.LastApplied(); got != 30 {
		t.Errorf("LastApplied = %d after the restart, want 30", got)
	}
}
