package queryservice

import (
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/google/uuid"
)

// TestTraceAsOfView: trace on a view shows the events up to the view's sequence only, in stream
// order, and a batch that was aborted leaves no event behind.
func TestTraceAsOfView(t *testing.T) {
	m := NewModel()
	correlation, id := uuid.New(), uuid.New()
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	event := func(i int) cr.Event {
		meta := cr.EventMeta{EventID: uuid.New(), AggregateID: id, CommandID: uuid.New(), CorrelationID: correlation, Timestamp: ts.Add(time.Duration(i) * time.Second)}
		if i == 1 {
			host, err := cr.ParseHostname("trace.example.com")
			if err != nil {
				t.Fatal(err)
			}
			return cr.ResourceRegistered{EventMeta: meta, Hostname: host, Type: cr.ResourceTypes()[0]}
		}
		return cr.AssetTagAssigned{EventMeta: meta, AssetTag: "AT"}
	}
	write := func(seq uint64, commit bool) {
		b := m.Begin()
		if err := b.Apply(seq, event(int(seq))); err != nil {
			t.Fatal(err)
		}
		if !commit {
			b.Abort()
			return
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	sequences := func(v View) []uint64 {
		tr, err := trace(v, correlation)
		if err != nil {
			t.Fatal(err)
		}
		var out []uint64
		for _, e := range tr.Events {
			out = append(out, e.Sequence)
		}
		return out
	}
	write(1, true)
	old := m.View()
	write(2, true)
	write(3, false)
	write(3, true)
	if got := sequences(old); len(got) != 1 || got[0] != 1 {
		t.Fatalf("view at sequence 1 traces %v, want [1]", got)
	}
	if got := sequences(m.View()); len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Fatalf("view at sequence 3 traces %v, want [1 2 3]", got)
	}
}
