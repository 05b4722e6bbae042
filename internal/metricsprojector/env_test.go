package metricsprojector

import (
	"context"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/internal/streamtest"
	"github.com/cim-infra/registry/internal/testkit"
	"github.com/cim-infra/registry/internal/workload"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// env is an embedded server with the event stream, and a writer of random valid histories that
// keeps the figures expected from them.
type env struct {
	t      *testing.T
	stream *streamtest.Stream
	ctx    context.Context
	url    string
	js     jetstream.JetStream
	store  *jetstore.Store

	g      *workload.Generator
	states map[uuid.UUID]cr.State
	last   map[uuid.UUID]uint64 // aggregate -> its last stream sequence
	exp    *expected
	head   uint64
	log    zerolog.Logger // the projectors' logger (default: none)
}

func newEnv(t *testing.T, seed uint64, resources int) *env {
	t.Helper()
	s := streamtest.New(t, 90*time.Second)
	return &env{t: t, stream: s, ctx: s.Ctx, url: s.URL, js: s.JS, store: s.Store,
		g: workload.New(seed, resources), states: map[uuid.UUID]cr.State{}, last: map[uuid.UUID]uint64{}, exp: newExpected(),
		log: zerolog.Nop()}
}

// write decides n commands of the history against the current state and appends their events.
func (e *env) write(n int) {
	e.t.Helper()
	for range n {
		c := e.g.Next()
		if c == nil {
			e.t.Fatal("every resource is decommissioned; use more resources")
		}
		evs, seq := e.stream.Do(e.t, e.states, e.last, c)
		if len(evs) > 0 {
			e.head = seq
		}
		for _, ev := range evs {
			e.exp.count(ev)
		}
	}
	e.exp.fleetFrom(e.g.States())
}

// publishRaw writes a message straight to the stream, as a misbehaving writer would.
func (e *env) publishRaw(h nats.Header, data []byte) uint64 {
	e.t.Helper()
	e.head = e.stream.PublishRaw(e.t, "cim.evt."+resourcestore.AggregateType+"."+uuid.NewString(), h, data)
	return e.head
}

// instance is one running projector process: its own connection and registry.
type instance struct {
	p    *Projector
	nc   *nats.Conn
	reg  *prometheus.Registry
	done chan error
	stop context.CancelFunc
}

func defaultTestOptions() Options {
	return Options{BatchSize: 64, FetchWait: 100 * time.Millisecond, AckWait: 2 * time.Second, SnapshotEvery: 250,
		SnapshotInterval: time.Hour, ProgressEvery: time.Hour}
}

// start runs a projector; setup may set test hooks before it runs.
func (e *env) start(opts Options, setup func(*Projector, *nats.Conn)) *instance {
	e.t.Helper()
	nc, err := nats.Connect(e.url)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		e.t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	p, err := New(js, opts, e.log, reg)
	if err != nil {
		e.t.Fatal(err)
	}
	if setup != nil {
		setup(p, nc)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	in := &instance{p: p, nc: nc, reg: reg, done: make(chan error, 1), stop: cancel}
	go func() { in.done <- p.Run(ctx) }()
	return in
}

// shutdown stops the projector gracefully (final snapshot) and closes its connection.
func (in *instance) shutdown(t *testing.T) {
	t.Helper()
	in.stop()
	if err := <-in.done; err != nil {
		t.Errorf("run: %v", err)
	}
	in.nc.Close()
}

// crash ends the projector as a killed process would: the connection goes at once (nothing more
// is acknowledged or written) and no final snapshot is taken.
func (in *instance) crash() {
	in.p.noFinalSnapshot.Store(true)
	in.nc.Close()
	in.stop()
	<-in.done
}

// waitSeq waits until the projector's figures stand for sequence seq.
func (e *env) waitSeq(in *instance, seq uint64) {
	e.t.Helper()
	err := testkit.Poll(e.ctx, func() bool {
		if in.p.Sequence() >= seq {
			return true
		}
		select {
		case err := <-in.done:
			e.t.Fatalf("projector stopped at sequence %d: %v", in.p.Sequence(), err)
		default:
		}
		return false
	})
	if err != nil {
		e.t.Fatalf("at sequence %d waiting for %d: %v", in.p.Sequence(), seq, err)
	}
}

// waitFor waits until cond holds.
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	testkit.WaitFor(e.t, e.ctx, what, cond)
}

// waitReady waits until the projector consumes (replay done).
func (e *env) waitReady(in *instance) {
	e.t.Helper()
	e.waitFor("readiness", func() bool { return in.p.Ready(e.ctx) == nil })
}

// savedSequence is the sequence of the snapshot in the bucket (0 if none).
func (e *env) savedSequence(bucket string) uint64 {
	e.t.Helper()
	obs, err := e.js.ObjectStore(e.ctx, bucket)
	if err != nil {
		e.t.Fatal(err)
	}
	b := &snapshots{obs: obs}
	s, _, err := b.load(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if s == nil {
		return 0
	}
	return s.sequence
}
