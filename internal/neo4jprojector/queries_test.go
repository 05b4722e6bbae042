package neo4jprojector

import (
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/google/uuid"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

// docQueries returns the named Cypher queries of docs/graph-model.md.
func docQueries(t *testing.T) map[string]string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/graph-model.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range regexp.MustCompile("(?s)```cypher\n// ([a-z-]+)\n(.*?)```").FindAllStringSubmatch(string(doc), -1) {
		out[m[1]] = m[2]
	}
	return out
}

func TestDocumentedQueriesAnswerWhatTheFoldSays(t *testing.T) {
	e := newEnv(t, 21, 80)
	e.hist.gen.DecommissionWeight = 6 // enough decommissioned resources to query
	e.appendEvents(2000)
	e.start(e.js, e.newSink(), testRunnerConfig())
	e.waitCheckpoint(e.hist.last)
	e.requireExactGraph()

	states := e.hist.states
	// Parameters that select something: the references of some resource in the fold.
	var org cr.OrganizationID
	var loc cr.LocationID
	var pol cr.PolicyID
	var key, val string
	for _, id := range slices.SortedFunc(maps.Keys(states), func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) }) {
		s := states[id]
		if o, ok := s.OrganizationID(); ok && org.IsZero() {
			org = o
		}
		if l, ok := s.LocationID(); ok && loc.IsZero() {
			loc = l
		}
		if ps := s.Policies(); len(ps) > 0 && pol.IsZero() {
			pol = ps[0]
		}
		for k, v := range s.Metadata() {
			if key == "" {
				key, val = k, v
			}
		}
	}
	if org.IsZero() || loc.IsZero() || pol.IsZero() || key == "" {
		t.Fatal("the history has no organization, location, policy or metadata to query")
	}
	where := func(keep func(cr.State) bool) []string {
		var ids []string
		for id, s := range states {
			if keep(s) {
				ids = append(ids, id.String())
			}
		}
		slices.Sort(ids)
		return ids
	}
	decommissioned := func(s cr.State) bool { return s.Status() == cr.StatusDecommissioned }
	tests := []struct {
		name   string
		params map[string]any
		want   []string
	}{
		{"resources-of-organization", map[string]any{"organization": org.String()},
			where(func(s cr.State) bool { o, _ := s.OrganizationID(); return o == org })},
		{"resources-at-location", map[string]any{"location": loc.String()},
			where(func(s cr.State) bool { l, _ := s.LocationID(); return l == loc })},
		{"resources-under-policy", map[string]any{"policy": pol.String()}, where(func(s cr.State) bool { return s.HasPolicy(pol) })},
		{"resources-by-status", map[string]any{"status": "active"}, where(func(s cr.State) bool { return s.Status() == cr.StatusActive })},
		{"decommissioned-resources", nil, where(decommissioned)},
		{"resources-without-owner", nil, where(func(s cr.State) bool { _, ok := s.OwnerID(); return !ok && !decommissioned(s) })},
		{"resources-by-metadata", map[string]any{"key": key, "value": val},
			where(func(s cr.State) bool { v, ok := s.MetadataValue(key); return ok && v == val })},
		{"organization-resources-missing-policy", map[string]any{"organization": org.String(), "policy": pol.String()},
			where(func(s cr.State) bool {
				o, _ := s.OrganizationID()
				return o == org && !decommissioned(s) && !s.HasPolicy(pol)
			})},
	}
	queries := docQueries(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, ok := queries[tt.name]
			if !ok {
				t.Fatalf("docs/graph-model.md has no query %q", tt.name)
			}
			delete(queries, tt.name)
			res, err := neo4j.ExecuteQuery(e.ctx, e.driver, q, tt.params, neo4j.EagerResultTransformer)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, rec := range res.Records {
				id, _, err := neo4j.GetRecordValue[string](rec, "id")
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, id)
			}
			slices.Sort(got)
			if len(tt.want) == 0 {
				t.Fatalf("the fold selects nothing for %v: a weak test", tt.params)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("%d resources %v, want %d %v", len(got), got, len(tt.want), tt.want)
			}
		})
	}

	t.Run("fleet-by-category-and-status", func(t *testing.T) {
		q, ok := queries["fleet-by-category-and-status"]
		if !ok {
			t.Fatal("docs/graph-model.md has no query fleet-by-category-and-status")
		}
		delete(queries, "fleet-by-category-and-status")
		want := map[string]int64{}
		for _, s := range states {
			want[s.Type().Category().String()+"/"+s.Status().String()]++
		}
		res, err := neo4j.ExecuteQuery(e.ctx, e.driver, q, nil, neo4j.EagerResultTransformer)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, rec := range res.Records {
			c, _, _ := neo4j.GetRecordValue[string](rec, "category")
			s, _, _ := neo4j.GetRecordValue[string](rec, "status")
			n, _, _ := neo4j.GetRecordValue[int64](rec, "resources")
			got[c+"/"+s] = n
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("fleet %v, want %v", got, want)
		}
	})

	t.Run("decommissioned-at is the last event's time", func(t *testing.T) {
		res, err := neo4j.ExecuteQuery(e.ctx, e.driver, docQueries(t)["decommissioned-resources"], nil, neo4j.EagerResultTransformer)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range res.Records {
			id, _, _ := neo4j.GetRecordValue[string](rec, "id")
			at, _, err := neo4j.GetRecordValue[time.Time](rec, "decommissioned_at")
			if err != nil || !at.Equal(states[uuid.MustParse(id)].UpdatedAt()) {
				t.Fatalf("%s decommissioned at %v (%v), want %v", id, at, err, states[uuid.MustParse(id)].UpdatedAt())
			}
		}
	})
	if len(queries) > 0 {
		t.Errorf("documented queries without a test: %v", queries)
	}
}
