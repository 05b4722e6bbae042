package queryservice

import (
	"strconv"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
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
	// Trace answers from the events the snapshot carried.
	var tr api.TraceReply
	e.query(api.QueryTrace, api.Trace{CorrelationID: traced.CorrelationID.String()}, &tr)
	if len(tr.Events) != 1 || tr.Events[0].Sequence != tracedSeq || tr.Events[0].AggregateID != tracedID.String() {
		t.Fatalf("trace after the restart: %+v", tr)
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
