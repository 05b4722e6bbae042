package neo4jprojector

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/projector"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestGraphEqualsTheFoldOfRandomHistories(t *testing.T) {
	e := newEnv(t, 11, 60)
	e.appendEvents(1500)
	r := e.start(e.js, e.newSink(), testRunnerConfig())
	e.waitCheckpoint(e.hist.last)
	e.requireExactGraph()

	// Live: events appended while the projector runs.
	e.appendEvents(500)
	e.waitCheckpoint(e.hist.last)
	e.requireExactGraph()
	e.requireNoDeadLetters()
	// The runner counts a batch once Neo4j committed it: wait for the count, then check it.
	e.waitFor("the applied metric", func() bool { return metric(t, r.reg, "cim_projector_events_applied_total") >= float64(e.hist.last) })
	if got := metric(t, r.reg, "cim_projector_events_applied_total"); got != float64(e.hist.last) {
		t.Errorf("applied metric = %v, want %d", got, e.hist.last)
	}
	if got := metric(t, r.reg, "cim_projector_batch_size"); got == 0 {
		t.Error("no batch observed in cim_projector_batch_size")
	}
}

// crashAfterCommit is a sink that, once armed, lets one batch commit in Neo4j and then kills
// the replica's NATS connection before the runner can acknowledge it.
type crashAfterCommit struct {
	projector.Sink
	nc      *nats.Conn
	armed   atomic.Bool
	crashed atomic.Bool
}

func (s *crashAfterCommit) Apply(ctx context.Context, batch []projector.Delivery) error {
	if s.crashed.Load() {
		return errors.New("replica is dead")
	}
	err := s.Sink.Apply(ctx, batch)
	if err == nil && s.armed.Load() {
		s.crashed.Store(true)
		s.nc.Close()
	}
	return err
}

func TestCrashBetweenCommitAndAckAppliesNothingTwice(t *testing.T) {
	e := newEnv(t, 12, 40)
	e.appendEvents(300)
	nc := natstest.Connect(t, e.srv.ClientURL())
	js, _ := jetstream.New(nc)
	crash := &crashAfterCommit{Sink: e.newSink(), nc: nc}
	a := e.start(js, crash, testRunnerConfig())
	e.waitCheckpoint(e.hist.last)

	crash.armed.Store(true)
	e.appendEvents(300)
	e.waitFor("the crash after a commit", crash.crashed.Load)
	a.stop()

	e.start(e.connect(), e.newSink(), testRunnerConfig())
	e.waitCheckpoint(e.hist.last)
	e.requireExactGraph()
	e.requireNoDeadLetters()
	// The batch committed but not acknowledged comes again and is skipped (the graph holds
	// it): after AckWait as a redelivery, or at once after the runner resets the consumer to
	// its ack floor (ReclaimHeld), which delivers it anew. Either way the new replica
	// acknowledges it, so the consumer's ack floor reaches the last event with nothing pending,
	// and the graph is still the fold of the stream, nothing applied twice.
	cfg := testRunnerConfig()
	js2 := e.connect()
	e.waitFor("the batch committed before the crash delivered again and acknowledged", func() bool {
		cons, err := js2.Consumer(e.ctx, cfg.Stream, cfg.Durable)
		if err != nil {
			return false
		}
		info, err := cons.Info(e.ctx)
		return err == nil && info.AckFloor.Stream >= e.hist.last && info.NumAckPending == 0
	})
	e.requireExactGraph()
}

func TestCrashMidBatchLeavesTheLastCommittedGraph(t *testing.T) {
	e := newEnv(t, 13, 40)
	e.appendEvents(300)
	nc := natstest.Connect(t, e.srv.ClientURL())
	js, _ := jetstream.New(nc)
	sink := e.newSink()
	var armed, crashed atomic.Bool
	sink.beforeCommit = func(context.Context) error {
		if !armed.Load() && !crashed.Load() {
			return nil
		}
		if crashed.CompareAndSwap(false, true) {
			nc.Close()
		}
		return errors.New("process died before the commit")
	}
	a := e.start(js, sink, testRunnerConfig())
	e.waitCheckpoint(e.hist.last)
	armed.Store(true)
	e.appendEvents(300)
	e.waitFor("the crash before a commit", crashed.Load)
	a.stop()

	// Nothing of the batch in flight is in the graph: it is exactly the fold up to the
	// checkpoint of the last committed batch.
	cp, err := e.newSink().Checkpoint(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp >= e.hist.last {
		t.Fatalf("checkpoint %d: the crashed batch was committed", cp)
	}
	requireSameGraph(t, e.hist.wantAt(cp), readGraph(t, e.ctx, e.driver))

	e.start(e.connect(), e.newSink(), testRunnerConfig())
	e.waitCheckpoint(e.hist.last)
	e.requireExactGraph()
	e.requireNoDeadLetters()
}

func TestNeo4jDownForAWhile(t *testing.T) {
	e := newEnv(t, 14, 40)
	e.appendEvents(300)
	proxy := newProxy(t, strings.TrimPrefix(neo4jURI(t), "bolt://"))
	driver := proxyDriver(t, proxy)
	sink := NewSink(driver, SinkConfig{}, testLog(t))
	r := e.start(e.js, sink, testRunnerConfig())
	e.waitCheckpoint(e.hist.last)

	proxy.Down()
	e.appendEvents(300)
	e.waitFor("readiness false while Neo4j is unreachable", func() bool {
		return r.runner.Ready(e.ctx) != nil && metric(t, r.reg, "cim_projector_apply_errors_total") >= 2
	})
	cp, err := e.newSink().Checkpoint(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp >= e.hist.last {
		t.Fatalf("checkpoint %d reached the end while Neo4j was unreachable", cp)
	}

	if err := proxy.Up(); err != nil {
		t.Fatal(err)
	}
	e.waitCheckpoint(e.hist.last)
	e.waitFor("ready again", func() bool { return r.runner.Ready(e.ctx) == nil })
	e.requireExactGraph()
	e.requireNoDeadLetters()
}

func TestFailOverToTheSecondReplica(t *testing.T) {
	e := newEnv(t, 15, 40)
	e.appendEvents(200)
	// The pin must outlast the slowest batch on a loaded machine, or the standby takes over
	// while the active replica is still writing (safe, but not what this test checks).
	cfg := testRunnerConfig()
	cfg.PinnedTTL = 8 * time.Second
	a := e.start(e.connect(), e.newSink(), cfg)
	e.waitCheckpoint(e.hist.last)
	b := e.start(e.connect(), e.newSink(), cfg)
	e.appendEvents(200)
	e.waitCheckpoint(e.hist.last)
	if a.runner.Role() != projector.RoleActive || b.runner.Role() != projector.RoleStandby ||
		metric(t, b.reg, "cim_projector_events_applied_total") != 0 {
		t.Fatalf("before the fail-over: a is %s, b is %s and applied %v events; want only a active",
			a.runner.Role(), b.runner.Role(), metric(t, b.reg, "cim_projector_events_applied_total"))
	}

	a.stop() // the active replica dies; b gets the pin once PinnedTTL has passed
	e.appendEvents(300)
	e.waitCheckpoint(e.hist.last)
	// The checkpoint is committed before the runner records the batch as applied.
	e.waitFor("b to have applied the events after the fail-over", func() bool { return b.runner.LastApplied() == e.hist.last })
	e.requireExactGraph()
	e.requireNoDeadLetters()
}

func TestRebuildReplaysTheStreamIntoAnEmptyGraph(t *testing.T) {
	e := newEnv(t, 16, 40)
	e.appendEvents(600)
	a := e.start(e.connect(), e.newSink(), testRunnerConfig())
	e.waitCheckpoint(e.hist.last)
	a.stop()

	// The graph drifts (a hand edit), and holds a node of someone else that must survive.
	for _, q := range []string{
		"MATCH (r:ComputeResource) WITH r LIMIT 5 SET r.status = 'edited by hand'",
		"MATCH ()-[x:UNDER_POLICY]->() WITH x LIMIT 5 DELETE x",
		"CREATE (:Foreign {id: 'kept'})",
	} {
		if _, err := neo4j.ExecuteQuery(e.ctx, e.driver, q, nil, neo4j.EagerResultTransformer); err != nil {
			t.Fatal(err)
		}
	}
	sink := e.newSink()
	b := e.newReplica(e.connect(), sink, testRunnerConfig())
	emptied := make(chan uint64, 1)
	result := b.rebuild(func() {
		cp, _ := sink.Checkpoint(e.ctx)
		emptied <- cp
	})
	select {
	case cp := <-emptied:
		if cp != 0 {
			t.Fatalf("checkpoint %d after emptying the graph", cp)
		}
	case err := <-result:
		t.Fatalf("rebuild: %v", err)
	}
	e.waitCheckpoint(e.hist.last)
	e.appendEvents(100) // and it goes on live
	e.waitCheckpoint(e.hist.last)

	want := e.hist.want(t)
	want.setProps(nodeKey("Foreign", "kept"), Props{"id": "kept"})
	requireSameGraph(t, want, readGraph(t, e.ctx, e.driver))
	e.waitFor("the applied metric", func() bool { return metric(t, b.reg, "cim_projector_events_applied_total") >= float64(e.hist.last) })
	if got := metric(t, b.reg, "cim_projector_events_applied_total"); got != float64(e.hist.last) {
		t.Errorf("rebuild applied %v events, want the whole stream, %d", got, e.hist.last)
	}
}

// metric returns the value of a counter, gauge or the sample count of a histogram.
func metric(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += value64(m)
		}
		return sum
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func value64(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// A rebuild started beside a replica that consumes refuses, and changes nothing: neither the
// graph nor the consumer the other replica goes on with.
func TestRebuildRefusesBesideAnActiveReplica(t *testing.T) {
	e := newEnv(t, 18, 30)
	e.appendEvents(200)
	a := e.start(e.connect(), e.newSink(), testRunnerConfig())
	e.waitCheckpoint(e.hist.last)

	b := e.newReplica(e.connect(), e.newSink(), testRunnerConfig())
	emptied := false
	err := <-b.rebuild(func() { emptied = true })
	if !errors.Is(err, projector.ErrNotActive) || emptied {
		t.Fatalf("rebuild beside an active replica: %v (graph emptied: %v), want projector.ErrNotActive", err, emptied)
	}
	t.Logf("refused: %v", err)
	e.requireExactGraph()
	e.appendEvents(100) // the active replica goes on
	e.waitCheckpoint(e.hist.last)
	e.requireExactGraph()
	if a.runner.Role() != projector.RoleActive {
		t.Errorf("the replica that consumed is %s after the refused rebuild", a.runner.Role())
	}
}

// The graph comparison counts relationships: a doubled edge planted in the projected graph (what
// a CREATE in place of a MERGE would leave) is reported, and nothing else is.
func TestGraphComparisonCatchesADoubledEdge(t *testing.T) {
	e := newEnv(t, 19, 20)
	e.appendEvents(150)
	r := e.start(e.connect(), e.newSink(), testRunnerConfig())
	e.waitCheckpoint(e.hist.last)
	r.stop()
	e.requireExactGraph()

	res, err := neo4j.ExecuteQuery(e.ctx, e.driver, `MATCH (r:ComputeResource)-[:BELONGS_TO]->(o:Organization)
WITH r, o ORDER BY r.id LIMIT 1
CREATE (r)-[:BELONGS_TO]->(o)
RETURN r.id AS from, o.id AS to`, nil, neo4j.EagerResultTransformer)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 1 {
		t.Fatalf("no BELONGS_TO relationship to double in the history's graph (%d records)", len(res.Records))
	}
	from, _ := res.Records[0].Get("from")
	to, _ := res.Records[0].Get("to")
	doubled := relKey(nodeKey(LabelResource, from.(string)), "BELONGS_TO", nodeKey("Organization", to.(string)))
	d := diff(e.hist.want(t), readGraph(t, e.ctx, e.driver))
	want := []string{"relationship " + doubled + " 2 times, want 1"}
	if !slices.Equal(d, want) {
		t.Fatalf("differences with a doubled edge:\n%s\nwant:\n%s", strings.Join(d, "\n"), strings.Join(want, "\n"))
	}
}
