package queryservice

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
)

// TestIndexesEqualScanAndViewsStay changes rows in every indexed field, batch after batch, and
// checks after each batch that every index gives what a scan of the rows gives (each lookup's
// rows, each sort field's order both ways, paged by cursor) and that a view taken before the
// changes still gives exactly what it gave then: the indexes are replaced right when a row's key
// changes, and a published view shares nothing the writer changes.
func TestIndexesEqualScanAndViewsStay(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	m := NewModel()
	fleet := newBenchFleet()
	policies := []cr.PolicyID{cr.PolicyID(uuid.New()), cr.PolicyID(uuid.New()), cr.PolicyID(uuid.New())}
	concepts := []cr.AccountConceptID{cr.AccountConceptID(uuid.New()), cr.AccountConceptID(uuid.New())}
	var ids []uuid.UUID
	seq := uint64(0)
	apply := func(b *Batch, e cr.Event) {
		seq++
		if err := b.Apply(seq, e); err != nil {
			t.Fatal(err)
		}
	}
	b := m.Begin()
	for i := range 300 {
		h := fleet.history(t, i)
		for _, e := range h {
			apply(b, e)
		}
		ids = append(ids, h[0].Meta().AggregateID)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	filters := []api.Filter{
		{}, {Metadata: []string{"batch=b1"}}, {Metadata: []string{"rack"}}, {Metadata: []string{"zone=z1"}},
		{OwnerIDs: []string{uuid.UUID(fleet.owners[3]).String()}}, {HostnamePrefix: "host-00001"},
		{Policies: []string{uuid.UUID(policies[1]).String()}}, {AccountConceptIDs: []string{uuid.UUID(concepts[0]).String()}},
		{Statuses: []string{"active", "maintenance"}}, {Q: "at-00002"}, {Model: "R601"}, {AssetTag: "AT-0000042"},
		// The metadata index answers the first entry; the others are checked on its rows.
		{Metadata: []string{"batch=b1", "rack=r5"}}, {Metadata: []string{"rack", "batch=b2"}},
		{Metadata: []string{"rack", "zone"}}, {Metadata: []string{"batch=b0"}, Model: "R601"},
	}
	type answer map[string][]uuid.UUID // filter and order to the ids in order
	answers := func(v View) answer {
		out := answer{}
		for fi, f := range filters {
			for _, field := range sortFields {
				for _, desc := range []bool{false, true} {
					name := fmt.Sprintf("filter %d order %s desc %v", fi, field.name, desc)
					out[name] = listIDs(t, v, f, field, desc)
					want := scanIDs(t, v, f, field, desc)
					if !slices.Equal(out[name], want) {
						t.Fatalf("seq %d, %s: list gives %d rows, a scan of the rows %d; they differ from row %d on",
							v.Sequence(), name, len(out[name]), len(want), firstDiff(out[name], want))
					}
				}
			}
		}
		return out
	}
	first := m.View()
	firstAnswers := answers(first)
	ts := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for round := range 8 {
		b := m.Begin()
		for range 60 {
			id := ids[rng.IntN(len(ids))]
			ts = ts.Add(time.Second)
			c := uuid.New()
			meta := cr.EventMeta{EventID: uuid.New(), AggregateID: id, CommandID: c, CorrelationID: c, Timestamp: ts}
			model, serial := fmt.Sprintf("R%d", 600+rng.IntN(5)), fmt.Sprintf("SN-new-%d", rng.IntN(1000))
			switch rng.IntN(8) {
			case 0:
				apply(b, cr.MetadataUpdated{EventMeta: meta, Key: "batch", Value: fmt.Sprintf("b%d", rng.IntN(4))})
			case 1:
				apply(b, cr.MetadataUpdated{EventMeta: meta, Key: "zone", Value: fmt.Sprintf("z%d", rng.IntN(3))})
			case 2:
				apply(b, cr.OwnerAssigned{EventMeta: meta, OwnerID: fleet.owners[rng.IntN(len(fleet.owners))]})
			case 3:
				apply(b, cr.PolicyAdded{EventMeta: meta, PolicyID: policies[rng.IntN(len(policies))]})
			case 4:
				apply(b, cr.PolicyRemoved{EventMeta: meta, PolicyID: policies[rng.IntN(len(policies))]})
			case 5:
				apply(b, cr.AccountConceptAssigned{EventMeta: meta, ConceptID: concepts[rng.IntN(len(concepts))]})
			case 6:
				apply(b, cr.HardwareDetailsSet{EventMeta: meta, Model: &model, SerialNumber: &serial})
			case 7:
				apply(b, cr.AssetTagAssigned{EventMeta: meta, AssetTag: fmt.Sprintf("AT-%07d", rng.IntN(400))})
			}
		}
		if round%2 == 0 { // new rows too
			h := fleet.history(t, 300+round)
			for _, e := range h {
				apply(b, e)
			}
			ids = append(ids, h[0].Meta().AggregateID)
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		answers(m.View())
		for name, want := range answers(first) {
			if !slices.Equal(want, firstAnswers[name]) {
				t.Fatalf("after round %d, the view at sequence %d answers %s otherwise than it did", round, first.Sequence(), name)
			}
		}
	}
}

// listIDs is list's answer over every page of 7 rows.
func listIDs(t *testing.T, v View, f api.Filter, order sortField, desc bool) []uuid.UUID {
	t.Helper()
	c, err := compileFilter(f)
	if err != nil {
		t.Fatal(err)
	}
	p := &listPlan{filter: c, order: order, desc: desc, limit: 7}
	var out []uuid.UUID
	for range 10000 {
		rows, page, err := listRows(v, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			out = append(out, r.id())
		}
		if page.NextCursor == "" {
			return out
		}
		cur, err := decodeCursor(page.NextCursor)
		if err != nil {
			t.Fatal(err)
		}
		p.after = cur.After
	}
	t.Fatal("list does not end")
	return nil
}

// scanIDs is the same answer from every row of v, tested by the filter's predicate and sorted by
// the order's key as bytes.
func scanIDs(t *testing.T, v View, f api.Filter, order sortField, desc bool) []uuid.UUID {
	t.Helper()
	c, err := compileFilter(f)
	if err != nil {
		t.Fatal(err)
	}
	var rows []*resource
	v.each(func(r *resource) bool {
		if c.match(r) {
			rows = append(rows, r)
		}
		return true
	})
	slices.SortFunc(rows, func(a, b *resource) int {
		if desc {
			a, b = b, a
		}
		return bytes.Compare(rowKey(order, a), rowKey(order, b))
	})
	out := make([]uuid.UUID, len(rows))
	for i, r := range rows {
		out[i] = r.id()
	}
	return out
}

func firstDiff(a, b []uuid.UUID) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
