package workload

import (
	"encoding/json"
	"testing"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/pkg/api"
)

func TestHistoriesAreValidAndDeterministic(t *testing.T) {
	a, b := New(7, 20), New(7, 20)
	replay := map[string]cr.State{}
	seen := map[string]bool{}
	for i := range 2000 {
		ca, cb := a.Next(), b.Next()
		if ca == nil {
			t.Fatalf("history ended after %d commands", i)
		}
		ja, _ := json.Marshal(ca)
		jb, _ := json.Marshal(cb)
		if string(ja) != string(jb) {
			t.Fatalf("command %d differs between generators with one seed:\n%s\n%s", i, ja, jb)
		}
		seen[ca.CommandName()] = true
		id := ca.AggregateID().String()
		evs, err := cr.Decide(replay[id], ca)
		if err != nil {
			t.Fatalf("command %d (%s) is invalid: %v", i, ca.CommandName(), err)
		}
		if len(evs) == 0 {
			t.Fatalf("command %d (%s) changes nothing", i, ca.CommandName())
		}
		replay[id] = cr.Fold(replay[id], evs...)
	}
	for _, name := range api.Commands() {
		if !seen[name] {
			t.Errorf("2000 commands never included %s", name)
		}
	}
	for id, s := range a.States() {
		if !s.Equal(replay[id.String()]) {
			t.Errorf("model of %s differs from the replayed fold", id)
		}
	}
}

func TestRequestCoversEveryCommand(t *testing.T) {
	g := New(1, 5)
	subjects := map[string]bool{}
	for range 500 {
		c := g.Next()
		subject, body := Request(c)
		if subject != api.CommandSubject(c.CommandName()) {
			t.Fatalf("subject %q for %s", subject, c.CommandName())
		}
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		var fields map[string]any
		if err := json.Unmarshal(raw, &fields); err != nil {
			t.Fatal(err)
		}
		if fields["command_id"] != c.Metadata().CommandID.String() || fields["aggregate_id"] != c.AggregateID().String() {
			t.Fatalf("%s request lost its ids: %s", c.CommandName(), raw)
		}
		subjects[subject] = true
	}
	if len(subjects) != len(api.Commands()) {
		t.Errorf("requests for %d commands, want %d", len(subjects), len(api.Commands()))
	}
}
