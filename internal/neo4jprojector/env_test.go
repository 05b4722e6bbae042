package neo4jprojector

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/neo4jtest"
	"github.com/cim-infra/registry/internal/projector"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/internal/testkit"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// env is one integration test's world: an embedded NATS server with the event stream, the
// shared real Neo4j (held exclusively and emptied, with the schema), and a history.
type env struct {
	t      testing.TB
	ctx    context.Context
	srv    *natstest.Node
	js     jetstream.JetStream
	store  *jetstore.Store
	driver neo4j.DriverWithContext
	hist   *history
}

func newEnv(t testing.TB, seed uint64, resources int) *env {
	t.Helper()
	driver := neo4jtest.Acquire(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	srv := natstest.RunServer(t)
	e := &env{t: t, ctx: ctx, srv: srv, driver: driver, hist: newHistory(seed, resources)}
	e.js = e.connect()
	store, err := jetstore.New(e.js, jetstore.Config{}, jetstore.WithUpcasters(resourcestore.Upcasters()...))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	e.store = store
	if err := EnsureSchema(ctx, driver, ""); err != nil {
		t.Fatal(err)
	}
	return e
}

// connect opens a new client connection (a replica of its own) to the test's server.
func (e *env) connect() jetstream.JetStream {
	e.t.Helper()
	js, err := jetstream.New(natstest.Connect(e.t, e.srv.ClientURL()))
	if err != nil {
		e.t.Fatal(err)
	}
	return js
}

// appendEvents appends n more commands of the history to the stream through jetstore.
func (e *env) appendEvents(n int) {
	e.t.Helper()
	e.hist.run(e.t, n, e.storeFunc())
}

// storeFunc appends through jetstore.
func (e *env) storeFunc() appendFunc {
	return func(id uuid.UUID, expected uint64, events []cr.Event) uint64 {
		recs, err := resourcestore.ToStore(events)
		if err != nil {
			e.t.Fatal(err)
		}
		res, err := e.store.Append(e.ctx, resourcestore.Ref(id), expected, recs)
		if err != nil {
			e.t.Fatalf("append %d events of %s: %v", len(events), id, err)
		}
		return res.LastSequence
	}
}

func testRunnerConfig() projector.Config {
	cfg := Config{Stream: jetstore.DefaultStream, SubjectPrefix: jetstore.DefaultSubjectPrefix, BatchSize: 64,
		FetchWait: 100 * time.Millisecond, PinnedTTL: 2 * time.Second, MaxBackoff: 200 * time.Millisecond,
		ProgressEvery: time.Second}
	rc := cfg.RunnerConfig()
	rc.AckWait = 2 * time.Second
	return rc
}

// replica is one projector process: its own runner (on the NATS connection given) and sink.
type replica struct {
	e      *env
	runner *projector.Runner
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

func (e *env) newReplica(js jetstream.JetStream, sink projector.Sink, cfg projector.Config) *replica {
	e.t.Helper()
	reg := prometheus.NewRegistry()
	r, err := projector.New(js, sink, cfg, testLog(e.t), projector.NewMetrics(reg, cfg.Name))
	if err != nil {
		e.t.Fatal(err)
	}
	return &replica{e: e, runner: r, reg: reg}
}

// run starts the replica; it is stopped when the test ends.
func (r *replica) run() {
	ctx, cancel := context.WithCancel(r.e.ctx)
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- r.runner.Run(ctx) }()
	r.e.t.Cleanup(r.stop)
}

// rebuild starts the replica as -rebuild does (empty the graph, replay the stream), with check
// run right after the graph was emptied; the runner's result comes on the channel returned.
func (r *replica) rebuild(check func()) <-chan error {
	ctx, cancel := context.WithCancel(r.e.ctx)
	r.cancel, r.done = cancel, make(chan error, 1)
	result := make(chan error, 1)
	go func() {
		err := r.runner.Rebuild(ctx, func(ctx context.Context) error {
			if err := EmptyGraph(ctx, r.e.driver, "", DefaultCheckpointName); err != nil {
				return err
			}
			check()
			return nil
		})
		result <- err
		r.done <- nil
	}()
	r.e.t.Cleanup(r.stop)
	return result
}

func (e *env) start(js jetstream.JetStream, sink projector.Sink, cfg projector.Config) *replica {
	e.t.Helper()
	r := e.newReplica(js, sink, cfg)
	r.run()
	return r
}

// stop stops the replica as a killed process would: it stops pulling at once, a batch in
// flight is not acknowledged.
func (r *replica) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	if err := <-r.done; err != nil {
		r.e.t.Errorf("runner: %v", err)
	}
	r.cancel = nil
}

func (e *env) newSink() *Sink { return NewSink(e.driver, SinkConfig{}, testLog(e.t)) }

func testLog(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

// waitCheckpoint waits until the graph's checkpoint reaches seq.
func (e *env) waitCheckpoint(seq uint64) {
	e.t.Helper()
	sink := e.newSink()
	e.waitFor("checkpoint "+u64(seq), func() bool {
		cp, err := sink.Checkpoint(e.ctx)
		return err == nil && cp >= seq
	})
}

func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	testkit.WaitFor(e.t, e.ctx, what, cond)
}

// requireExactGraph reads the whole graph and compares it with the fold of the history.
func (e *env) requireExactGraph() {
	e.t.Helper()
	requireSameGraph(e.t, e.hist.want(e.t), readGraph(e.t, e.ctx, e.driver))
}

// requireNoDeadLetters checks that the dead-letter stream holds nothing for the projector.
func (e *env) requireNoDeadLetters() {
	e.t.Helper()
	s, err := e.js.Stream(e.ctx, "CIM_DLQ")
	if err != nil {
		e.t.Fatalf("dead-letter stream: %v", err)
	}
	info, err := s.Info(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		e.t.Fatalf("%d events were dead-lettered", info.State.Msgs)
	}
}

// readGraph reads every node, property and relationship of the database, counting the copies of
// each node key and of each relationship.
func readGraph(t testing.TB, ctx context.Context, driver neo4j.DriverWithContext) graph {
	t.Helper()
	g := newGraph()
	res, err := neo4j.ExecuteQuery(ctx, driver, "MATCH (n) RETURN labels(n) AS labels, properties(n) AS props", nil, neo4j.EagerResultTransformer)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range res.Records {
		labels, _ := rec.Get("labels")
		propsV, _ := rec.Get("props")
		props := Props(propsV.(map[string]any))
		key := nodeKeyOf(labels.([]any), props)
		if _, seen := g.nodes[key]; seen {
			g.copies[key] = max(g.copies[key], 1) + 1
		}
		g.setProps(key, props)
	}
	res, err = neo4j.ExecuteQuery(ctx, driver, `MATCH (a)-[r]->(b)
RETURN labels(a) AS al, properties(a) AS ap, type(r) AS type, properties(r) AS rp, labels(b) AS bl, properties(b) AS bp`,
		nil, neo4j.EagerResultTransformer)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range res.Records {
		get := func(k string) any { v, _ := rec.Get(k); return v }
		from := nodeKeyOf(get("al").([]any), get("ap").(map[string]any))
		to := nodeKeyOf(get("bl").([]any), get("bp").(map[string]any))
		typ := get("type").(string)
		if rp := get("rp").(map[string]any); len(rp) > 0 {
			typ += " " + value(rp)
		}
		g.rels[relKey(from, typ, to)]++
	}
	return g
}

func nodeKeyOf(labels []any, props map[string]any) string {
	names := make([]string, len(labels))
	for i, l := range labels {
		names[i] = l.(string)
	}
	id, ok := props["id"].(string)
	if !ok {
		id, _ = props["name"].(string)
	}
	return nodeKey(strings.Join(names, "+"), id)
}

func u64(n uint64) string { return strconv.FormatUint(n, 10) }
