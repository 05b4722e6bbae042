package jetstore_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/pkg/jetstore"
)

// appendOneByOne appends n single events and returns them with their records.
func appendOneByOne(t *testing.T, st *jetstore.Store, agg jetstore.AggregateRef, n int) ([]jetstore.Event, []jetstore.RecordedEvent) {
	t.Helper()
	evs := newEvents(n, "Stepped")
	var last uint64
	for i := range evs {
		last = mustAppend(t, st, agg, last, evs[i:i+1]).LastSequence
	}
	l := mustLoad(t, st, agg)
	sameEvents(t, l.Events, evs)
	return evs, l.Events
}

func testTailLoad(t *testing.T, e env) {
	st, agg := e.Store, newAgg(t)
	evs, recs := appendOneByOne(t, st, agg, 6)
	for k := range recs {
		l := mustLoad(t, st, agg, jetstore.After(recs[k].Sequence))
		sameEvents(t, l.Events, evs[k+1:])
		if l.LastSequence != recs[len(recs)-1].Sequence {
			t.Fatalf("after %d: LastSequence %d, want %d", recs[k].Sequence, l.LastSequence, recs[len(recs)-1].Sequence)
		}
	}
	// Nothing newer: the state the caller has stays current.
	head := recs[len(recs)-1].Sequence
	if l := mustLoad(t, st, agg, jetstore.After(head)); len(l.Events) != 0 || l.LastSequence != head {
		t.Fatalf("after head: %d events, last %d", len(l.Events), l.LastSequence)
	}
	// A tail read picks up what was appended since.
	more := newEvents(2, "More")
	mustAppend(t, st, agg, head, more)
	sameEvents(t, mustLoad(t, st, agg, jetstore.After(head)).Events, more)
}

func testUpToSequence(t *testing.T, e env) {
	st, agg := e.Store, newAgg(t)
	evs, recs := appendOneByOne(t, st, agg, 5)
	for k := range recs {
		l := mustLoad(t, st, agg, jetstore.UpToSequence(recs[k].Sequence))
		sameEvents(t, l.Events, evs[:k+1])
		if l.LastSequence != recs[k].Sequence {
			t.Fatalf("up to %d: LastSequence %d", recs[k].Sequence, l.LastSequence)
		}
		// A bound between two events of the aggregate (other aggregates' sequences) works too.
		l = mustLoad(t, st, agg, jetstore.UpToSequence(recs[k].Sequence+1))
		if len(l.Events) < k+1 {
			t.Fatalf("up to %d: %d events", recs[k].Sequence+1, len(l.Events))
		}
	}
	if l := mustLoad(t, st, agg, jetstore.UpToSequence(recs[0].Sequence-1)); len(l.Events) != 0 {
		t.Fatalf("before the first event: %d events", len(l.Events))
	}
	l := mustLoad(t, st, agg, jetstore.After(recs[1].Sequence), jetstore.UpToSequence(recs[3].Sequence))
	sameEvents(t, l.Events, evs[2:4])
}

func testUpToTime(t *testing.T, e env) {
	st, agg := e.Store, newAgg(t)
	evs, recs := appendOneByOne(t, st, agg, 5)
	for k := range recs {
		l := mustLoad(t, st, agg, jetstore.UpToTime(recs[k].Time))
		want := 0
		for _, r := range recs {
			if !r.Time.After(recs[k].Time) {
				want++
			}
		}
		sameEvents(t, l.Events, evs[:want])
	}
	if l := mustLoad(t, st, agg, jetstore.UpToTime(recs[0].Time.Add(-time.Nanosecond))); len(l.Events) != 0 {
		t.Fatalf("before the first event: %d events", len(l.Events))
	}
	if l := mustLoad(t, st, agg, jetstore.UpToTime(time.Now().Add(time.Hour))); len(l.Events) != len(evs) {
		t.Fatalf("up to the future: %d events", len(l.Events))
	}
}

// testLongAggregate fills one aggregate with 10,000 events in atomic batches of 1000.
func testLongAggregate(t *testing.T, e env) {
	st, agg := e.Store, newAgg(t)
	var want []jetstore.Event
	var last uint64
	for range 10 {
		evs := newEvents(jetstore.MaxBatch, "Bulk")
		last = mustAppend(t, st, agg, last, evs).LastSequence
		want = append(want, evs...)
	}
	l := mustLoad(t, st, agg)
	sameEvents(t, l.Events, want)
	if l.LastSequence != last {
		t.Fatalf("LastSequence %d, want %d", l.LastSequence, last)
	}
	tail := mustLoad(t, st, agg, jetstore.After(l.Events[9_500].Sequence))
	sameEvents(t, tail.Events, want[9_501:])
}

// testPaging loads with pages smaller than the aggregate, so that page boundaries fall
// everywhere.
func testPaging(t *testing.T, e env) {
	agg := newAgg(t)
	evs := newEvents(23, "Paged")
	mustAppend(t, e.Store, agg, 0, evs)
	for _, size := range []int{1, 2, 7, 22, 23, 24} {
		st, err := jetstore.New(e.JS, e.Store.Config(), jetstore.WithPageSize(size))
		if err != nil {
			t.Fatal(err)
		}
		sameEvents(t, mustLoad(t, st, agg).Events, evs)
	}
	if _, err := jetstore.New(e.JS, e.Store.Config(), jetstore.WithPageSize(0)); !errors.Is(err, jetstore.ErrInvalidOption) {
		t.Fatalf("page size 0: %v", err)
	}
}

// testMaxEvents pages through an aggregate with MaxEvents and After, with store pages smaller
// and larger than the limit, and checks that More is set exactly when events follow within the
// other bounds.
func testMaxEvents(t *testing.T, e env) {
	agg := newAgg(t)
	evs := newEvents(23, "Limited")
	res := mustAppend(t, e.Store, agg, 0, evs)
	for _, pageSize := range []int{2, jetstore.DefaultPageSize} {
		st, err := jetstore.New(e.JS, e.Store.Config(), jetstore.WithPageSize(pageSize))
		if err != nil {
			t.Fatal(err)
		}
		for _, limit := range []int{1, 5, 22, 23, 24} {
			var got []jetstore.RecordedEvent
			after, pages := uint64(0), 0
			for {
				l := mustLoad(t, st, agg, jetstore.After(after), jetstore.MaxEvents(limit))
				pages++
				if len(l.Events) > limit || len(l.Events) == 0 && l.More {
					t.Fatalf("page size %d, limit %d: page of %d events, more %v", pageSize, limit, len(l.Events), l.More)
				}
				got = append(got, l.Events...)
				if l.More != (len(got) < len(evs)) {
					t.Fatalf("page size %d, limit %d: more %v after %d of %d events", pageSize, limit, l.More, len(got), len(evs))
				}
				if !l.More {
					break
				}
				if l.LastSequence != l.Events[len(l.Events)-1].Sequence {
					t.Fatalf("LastSequence %d, last event %d", l.LastSequence, l.Events[len(l.Events)-1].Sequence)
				}
				after = l.LastSequence
			}
			sameEvents(t, got, evs)
			if want := (len(evs) + limit - 1) / limit; pages != want {
				t.Fatalf("page size %d, limit %d: %d pages, want %d", pageSize, limit, pages, want)
			}
		}
	}
	// An upper bound that ends exactly at the limit leaves nothing more within it.
	upTo := res.FirstSequence + 4
	l := mustLoad(t, e.Store, agg, jetstore.MaxEvents(5), jetstore.UpToSequence(upTo))
	sameEvents(t, l.Events, evs[:5])
	if l.More {
		t.Fatal("more events reported beyond UpToSequence")
	}
	if l = mustLoad(t, e.Store, agg, jetstore.MaxEvents(4), jetstore.UpToSequence(upTo)); !l.More || len(l.Events) != 4 {
		t.Fatalf("limit 4 up to the fifth event: %d events, more %v", len(l.Events), l.More)
	}
	if l = mustLoad(t, e.Store, newAgg(t), jetstore.MaxEvents(3)); len(l.Events) != 0 || l.More {
		t.Fatalf("empty aggregate: %d events, more %v", len(l.Events), l.More)
	}
	for _, n := range []int{0, -1} {
		if _, err := e.Store.Load(ctxT(t), agg, jetstore.MaxEvents(n)); !errors.Is(err, jetstore.ErrInvalidOption) {
			t.Fatalf("MaxEvents(%d): %v", n, err)
		}
	}
}

// testIsolation interleaves appends to many aggregates, some with ids that are prefixes of others.
func testIsolation(t *testing.T, e env) {
	const aggregates = 60
	st, typ := e.Store, aggType(t)
	want := make(map[jetstore.AggregateRef][]jetstore.Event)
	last := make(map[jetstore.AggregateRef]uint64)
	refs := make([]jetstore.AggregateRef, aggregates)
	for i := range refs {
		refs[i] = jetstore.AggregateRef{Type: typ, ID: strings.Repeat("1", i%3+1) + fmt.Sprint(i/3)}
	}
	refs = append(refs, jetstore.AggregateRef{Type: typ + "x", ID: refs[0].ID}) // same id, other type
	for round := range 3 {
		for _, agg := range refs {
			evs := newEvents(round+1, "Isolated")
			last[agg] = mustAppend(t, st, agg, last[agg], evs).LastSequence
			want[agg] = append(want[agg], evs...)
		}
	}
	for _, agg := range refs {
		l := mustLoad(t, st, agg)
		sameEvents(t, l.Events, want[agg])
		for _, ev := range l.Events {
			if ev.Aggregate != agg {
				t.Fatalf("%s loaded an event of %s", agg, ev.Aggregate)
			}
		}
	}
}

func testSnapshots(t *testing.T, e env) {
	ctx := ctxT(t)
	bucket := fmt.Sprintf("SNAP_%d", unique.Add(1))
	snaps, err := jetstore.NewSnapshotStore(ctx, e.JS, jetstore.WithSnapshotBucket(bucket),
		jetstore.WithSnapshotReplicas(e.Replicas), jetstore.WithSnapshotPolicy(jetstore.SnapshotEvery(3)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jetstore.NewSnapshotStore(ctx, e.JS, jetstore.WithSnapshotBucket(bucket), jetstore.WithSnapshotReplicas(e.Replicas)); err != nil {
		t.Fatalf("second NewSnapshotStore: %v", err)
	}
	st := e.Store
	for _, agg := range []jetstore.AggregateRef{newAgg(t), {Type: aggType(t), ID: "id:ü/1"}} {
		if _, err := snaps.Get(ctx, agg); !errors.Is(err, jetstore.ErrNoSnapshot) {
			t.Fatalf("Get before Put: %v, want ErrNoSnapshot", err)
		}
		evs, recs := appendOneByOne(t, st, agg, 5)
		res, err := st.LoadWithSnapshot(ctx, agg, snaps, 2)
		if err != nil || res.Snapshot != nil {
			t.Fatalf("without snapshot: %+v, %v", res.Snapshot, err)
		}
		sameEvents(t, res.Events, evs)
		if !snaps.Due(len(res.Events)) || snaps.Due(2) {
			t.Fatalf("SnapshotEvery(3): Due(%d) false or Due(2) true", len(res.Events))
		}
		snap := jetstore.Snapshot{State: []byte("state@3"), Sequence: recs[2].Sequence, SchemaVersion: 2}
		if err := snaps.Put(ctx, agg, snap); err != nil {
			t.Fatal(err)
		}
		got, err := snaps.Get(ctx, agg)
		if err != nil || !bytes.Equal(got.State, snap.State) || got.Sequence != snap.Sequence || got.SchemaVersion != 2 {
			t.Fatalf("Get: %+v, %v", got, err)
		}
		res, err = st.LoadWithSnapshot(ctx, agg, snaps, 2)
		if err != nil || res.Snapshot == nil || string(res.Snapshot.State) != "state@3" {
			t.Fatalf("with snapshot: %+v, %v", res.Snapshot, err)
		}
		sameEvents(t, res.Events, evs[3:])
		if res.LastSequence != recs[4].Sequence {
			t.Fatalf("LastSequence %d, want %d", res.LastSequence, recs[4].Sequence)
		}
		// A snapshot of another schema version is ignored: every event is loaded.
		res, err = st.LoadWithSnapshot(ctx, agg, snaps, 3)
		if err != nil || res.Snapshot != nil {
			t.Fatalf("stale schema: %+v, %v", res.Snapshot, err)
		}
		sameEvents(t, res.Events, evs)
		// A snapshot at the head leaves no tail; LastSequence stays the snapshot's.
		if err := snaps.Put(ctx, agg, jetstore.Snapshot{State: []byte("head"), Sequence: recs[4].Sequence, SchemaVersion: 2}); err != nil {
			t.Fatal(err)
		}
		res, err = st.LoadWithSnapshot(ctx, agg, snaps, 2)
		if err != nil || len(res.Events) != 0 || res.LastSequence != recs[4].Sequence {
			t.Fatalf("snapshot at head: %d events, last %d, %v", len(res.Events), res.LastSequence, err)
		}
	}
	if err := snaps.Put(ctx, newAgg(t), jetstore.Snapshot{State: []byte("x")}); !errors.Is(err, jetstore.ErrInvalidOption) {
		t.Fatalf("snapshot at sequence 0: %v", err)
	}
}

func testUpcasting(t *testing.T, e env) {
	agg := newAgg(t)
	appendV := func(last uint64, version int, data string) uint64 {
		ev := newEvents(1, "Renamed")[0]
		ev.SchemaVersion, ev.Data = version, []byte(data)
		return mustAppend(t, e.Store, agg, last, []jetstore.Event{ev}).LastSequence
	}
	last := appendV(0, 1, "a")
	last = appendV(last, 2, "b+v2")
	last = appendV(last, 3, "c+v2+v3")
	appendV(last, 1, "fail")
	ups := []jetstore.Upcaster{
		{EventType: "Renamed", FromVersion: 2, Upcast: func(b []byte) ([]byte, error) { return append(b, "+v3"...), nil }},
		{EventType: "Renamed", FromVersion: 1, Upcast: func(b []byte) ([]byte, error) {
			if string(b) == "fail" {
				return nil, errors.New("cannot read")
			}
			return append(b, "+v2"...), nil
		}},
		{EventType: "Other", FromVersion: 1, Upcast: func([]byte) ([]byte, error) { return nil, errors.New("not for Renamed") }},
	}
	st, err := jetstore.New(e.JS, e.Store.Config(), jetstore.WithUpcasters(ups...))
	if err != nil {
		t.Fatal(err)
	}
	l := mustLoad(t, st, agg, jetstore.UpToSequence(last))
	for i, want := range []string{"a+v2+v3", "b+v2+v3", "c+v2+v3"} {
		if ev := l.Events[i]; ev.SchemaVersion != 3 || string(ev.Data) != want {
			t.Fatalf("event %d: v%d %q, want v3 %q", i, ev.SchemaVersion, ev.Data, want)
		}
	}
	_, err = st.Load(ctxT(t), agg)
	var uerr *jetstore.UpcastError
	if !errors.As(err, &uerr) || !errors.Is(err, jetstore.ErrUpcast) || uerr.EventType != "Renamed" || uerr.Version != 1 || uerr.Sequence <= last {
		t.Fatalf("failing upcaster: %v (%+v)", err, uerr)
	}
	if _, err := jetstore.New(e.JS, e.Store.Config(), jetstore.WithUpcasters(ups[0], ups[0])); !errors.Is(err, jetstore.ErrInvalidOption) {
		t.Fatalf("two upcasters for one version: %v", err)
	}
	if _, err := jetstore.New(e.JS, e.Store.Config(), jetstore.WithUpcasters(jetstore.Upcaster{EventType: "X", FromVersion: 1})); !errors.Is(err, jetstore.ErrInvalidOption) {
		t.Fatalf("upcaster without function: %v", err)
	}
}

func testLastEvent(t *testing.T, e env) {
	st, agg := e.Store, newAgg(t)
	if _, ok, err := st.LastEvent(ctxT(t), agg); err != nil || ok {
		t.Fatalf("last event of an aggregate without events: ok %v, %v", ok, err)
	}
	var head uint64
	for n := 1; n <= 3; n++ {
		evs := newEvents(n, "Last") // atomic batches too: the last event is the batch's last
		head = mustAppend(t, st, agg, head, evs).LastSequence
		// Another aggregate's event after it: the last event is per aggregate.
		appendOneByOne(t, st, newAgg(t), 1)
		last, ok, err := st.LastEvent(ctxT(t), agg)
		if err != nil || !ok {
			t.Fatalf("last event after %d appends: ok %v, %v", n, ok, err)
		}
		if want := evs[n-1]; last.Sequence != head || last.ID != want.ID || last.Aggregate != agg {
			t.Fatalf("last event %d %s of %v, want %d %s of %v", last.Sequence, last.ID, last.Aggregate, head, want.ID, agg)
		}
	}
	if _, _, err := st.LastEvent(ctxT(t), jetstore.AggregateRef{Type: "bad type", ID: "x"}); err == nil {
		t.Fatal("last event of an invalid aggregate ref: no error")
	}
}
