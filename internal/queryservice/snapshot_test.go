package queryservice

import (
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// TestRestartFromSnapshot: a new instance starts from the stored snapshot, catches up from its
// sequence on, and its model equals the fold, at once and as the history goes on.
func TestRestartFromSnapshot(t *testing.T) {
	e := newEnv(t, 101, 120)
	e.write(400)
	traced := newMeta(time.Date(2027, 5, 1, 0, 0, 0, 0, time.UTC))
	tracedID, tracedSeq := e.register("traced.example.com", traced)
	e.write(400)
	a := e.startReady(testOptions())
	e.waitSeq(a, e.head)
	if err := a.svc.follower.saveSnapshot(e.ctx); err != nil {
		t.Fatal(err)
	}
	saved := a.svc.Model().Sequence()
	var before api.TraceReply
	e.query(api.QueryTrace, api.Trace{CorrelationID: traced.CorrelationID.String()}, &before)
	if err := a.shutdown(); err != nil {
		t.Fatal(err)
	}
	e.write(200)
	b := e.startReady(testOptions())
	if b.svc.follower.restored != saved {
		t.Fatalf("started from snapshot sequence %d, want %d", b.svc.follower.restored, saved)
	}
	for range 3 {
		e.waitSeq(b, e.head)
		rows, _ := e.listAll(api.List{Limit: api.MaxListLimit})
		expectEqualFold(t, rows, e.states, e.version)
		e.write(100)
	}
	// Trace finds the event through the index the snapshot carried, and answers as before.
	var tr api.TraceReply
	e.query(api.QueryTrace, api.Trace{CorrelationID: traced.CorrelationID.String()}, &tr)
	if len(tr.Events) != 1 || tr.Events[0].Sequence != tracedSeq || tr.Events[0].AggregateID != tracedID.String() {
		t.Fatalf("trace after the restart: %+v", tr)
	}
	if !reflect.DeepEqual(tr.Events, before.Events) {
		t.Fatalf("trace after the restart: %+v, before: %+v", tr.Events, before.Events)
	}
}

// TestSnapshotOfAnotherStreamIgnored: a snapshot made from a stream that was deleted and created
// again under the same name is not used; the model is built from the new stream's events.
func TestSnapshotOfAnotherStreamIgnored(t *testing.T) {
	e := newEnv(t, 111, 50)
	e.write(300)
	a := e.startReady(testOptions())
	e.waitSeq(a, e.head)
	if err := a.svc.follower.saveSnapshot(e.ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := e.js.DeleteStream(e.ctx, "CIM_EVENTS"); err != nil {
		t.Fatal(err)
	}
	natstest.CreateAfterDelete(t, func() error { return e.store.EnsureStream(e.ctx) })
	e.states, e.version, e.head = map[uuid.UUID]cr.State{}, map[uuid.UUID]uint64{}, 0
	e.register("after-the-reset.example.com", newMeta(time.Date(2027, 4, 1, 0, 0, 0, 0, time.UTC)))
	b := e.startReady(testOptions())
	if b.svc.follower.restored != 0 {
		t.Fatalf("started from a snapshot of another stream at %d", b.svc.follower.restored)
	}
	e.waitSeq(b, e.head)
	rows, _ := e.listAll(api.List{Limit: api.MaxListLimit})
	expectEqualFold(t, rows, e.states, e.version)
}

// TestSnapshotMetadataChecks: another schema, another stream or creation time, a sequence ahead
// of the stream's head, or no sequence: each is refused.
func TestSnapshotMetadataChecks(t *testing.T) {
	created := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	id := streamIdentity{name: "CIM_EVENTS", created: created}
	good := func() map[string]string {
		return map[string]string{metaSchema: strconv.Itoa(SnapshotSchema), metaStream: "CIM_EVENTS",
			metaStreamCreated: created.Format(time.RFC3339Nano), metaSequence: "100"}
	}
	if err := checkMeta(good(), id, 100); err != nil {
		t.Fatalf("a matching snapshot refused: %v", err)
	}
	for name, change := range map[string]func(map[string]string){
		"schema":      func(m map[string]string) { m[metaSchema] = "99" },
		"stream":      func(m map[string]string) { m[metaStream] = "OTHER" },
		"created":     func(m map[string]string) { m[metaStreamCreated] = created.Add(time.Second).Format(time.RFC3339Nano) },
		"ahead":       func(m map[string]string) { m[metaSequence] = "101" },
		"no sequence": func(m map[string]string) { delete(m, metaSequence) },
	} {
		m := good()
		change(m)
		if err := checkMeta(m, id, 100); err == nil {
			t.Errorf("%s: a mismatching snapshot accepted", name)
		}
	}
}

// TestSnapshotRoundTrip: a model loaded from a snapshot holds every row with its version, and
// every entry of the trace index, as the model that saved it.
func TestSnapshotRoundTrip(t *testing.T) {
	srv := natstest.RunServer(t)
	js, err := jetstream.New(natstest.Connect(t, srv.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	m := NewModel()
	fleet := newBenchFleet()
	b := m.Begin()
	seq := uint64(0)
	correlation := uuid.New()
	for i := range 200 {
		h := fleet.history(t, i)
		// and an event whose command, correlation and causation ids differ
		h = append(h, cr.AssetTagAssigned{AssetTag: "AT-x" + strconv.Itoa(i), EventMeta: cr.EventMeta{EventID: uuid.New(),
			AggregateID: h[0].Meta().AggregateID, CommandID: uuid.New(), CorrelationID: correlation, CausationID: uuid.New(),
			Timestamp: time.Date(2026, 2, 1, 0, 0, i, 0, time.UTC)}})
		for _, e := range h {
			seq++
			if err := b.Apply(seq, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	b.Skip(seq + 5)
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	snaps, err := openSnapshots(ctx, js, "TEST_SNAPSHOTS", 1)
	if err != nil {
		t.Fatal(err)
	}
	id := streamIdentity{name: "CIM_EVENTS", created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := snaps.save(ctx, m.View(), id); err != nil {
		t.Fatal(err)
	}
	restored := NewModel()
	got, err := snaps.load(ctx, restored, id, seq+5)
	if err != nil || got != seq+5 || restored.Sequence() != seq+5 || restored.Resources() != 200 {
		t.Fatalf("load: sequence %d, model at %d with %d resources, %v", got, restored.Sequence(), restored.Resources(), err)
	}
	v, w := m.View(), restored.View()
	v.each(func(r *resource) bool {
		r2, ok := w.Resource(r.id())
		if !ok || r2.version != r.version || r2.data() != r.data() {
			t.Fatalf("row %s differs after the load", r.id())
		}
		return true
	})
	want, have := v.trace.upTo(seq), w.trace.upTo(seq)
	if len(want) != int(seq) || !slices.Equal(have, want) {
		t.Fatalf("trace: %d entries loaded of %d, want %d, the same", len(have), len(want), seq)
	}
	if got := w.trace.sequences(correlationKey(correlation), seq); len(got) != 200 {
		t.Fatalf("trace of the shared correlation id after the load: %d events, want 200", len(got))
	}
}
