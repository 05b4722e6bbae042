package queryservice

import (
	"slices"
	"testing"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/google/uuid"
)

// TestBulkBuildEqualsRowByRow: a model built in bulk (StartBulk, EndBulk) from a history whose
// resources' events are interleaved, one event of each resource per round, so that the decoded
// states pass maxBulkStates and are encoded into rows while the build goes on, holds the same
// rows, indexes and count as a model built batch by batch; an event of a resource never
// registered makes no row in either.
func TestBulkBuildEqualsRowByRow(t *testing.T) {
	n := maxBulkStates + 1500
	fleet := newBenchFleet()
	histories := make([][]cr.Event, n)
	for i := range histories {
		histories[i] = fleet.history(t, i)
	}
	var events []cr.Event
	for k := range len(histories[0]) {
		for i := range histories {
			events = append(events, histories[i][k])
		}
		if k == 2 {
			c := uuid.New()
			events = append(events, cr.OwnerAssigned{OwnerID: fleet.owners[0], EventMeta: cr.EventMeta{
				EventID: uuid.New(), AggregateID: uuid.New(), CommandID: c, CorrelationID: c, CausationID: c, Timestamp: fleet.ts}})
		}
	}
	build := func(bulk bool) *Model {
		m := NewModel()
		if bulk {
			m.StartBulk()
		}
		for start := 0; start < len(events); start += 500 {
			b := m.Begin()
			for i, e := range events[start:min(start+500, len(events))] {
				if err := b.Apply(uint64(start+i+1), e); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		m.EndBulk()
		return m
	}
	bulk, rowByRow := build(true), build(false)
	if bulk.Resources() != n || rowByRow.Resources() != n {
		t.Fatalf("resources: bulk %d, row by row %d, want %d", bulk.Resources(), rowByRow.Resources(), n)
	}
	if bulk.Sequence() != uint64(len(events)) {
		t.Fatalf("bulk model at %d, want %d", bulk.Sequence(), len(events))
	}
	type row struct {
		data    string
		version uint64
	}
	rowsOf := func(items []*resource) []row {
		out := make([]row, len(items))
		for i, r := range items {
			out[i] = row{r.data(), r.version}
		}
		return out
	}
	b, r := bulk.View().t, rowByRow.View().t
	if got, want := rowsOf(b.byID.Items()), rowsOf(r.byID.Items()); len(got) != n || !slices.Equal(got, want) {
		t.Fatalf("rows by id: %d bulk, %d row by row, or they differ", len(got), len(want))
	}
	fields := rowFields()
	for i, tree := range b.rowTrees() {
		if !slices.Equal(rowsOf(tree.Items()), rowsOf(r.rowTrees()[i].Items())) {
			t.Fatalf("index %s differs", fields[i].name)
		}
	}
	entries := func(items []metaEntry) []row {
		out := make([]row, len(items))
		for i, e := range items {
			k, v := e.entry()
			out[i] = row{k + "=" + v + "@" + e.r.data(), e.r.version}
		}
		return out
	}
	if got, want := entries(b.meta.Items()), entries(r.meta.Items()); len(got) != 2*n || !slices.Equal(got, want) {
		t.Fatalf("metadata index: %d entries bulk, %d row by row, or they differ", len(got), len(want))
	}
}
