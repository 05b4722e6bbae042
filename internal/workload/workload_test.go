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

// A long run with Renew keeps its working set: decommissioned resources give way to new
// registrations, the history never runs dry, and the generator's model stays bounded.
func TestRenewKeepsAWorkingSet(t *testing.T) {
	const resources = 10
	g := New(3, resources)
	g.DecommissionWeight = 100
	g.Renew = true
	replay := map[string]cr.State{}
	registered, decommissioned := 0, 0
	for i := range 5000 {
		c := g.Next()
		if c == nil {
			t.Fatalf("history ended after %d commands", i)
		}
		id := c.AggregateID().String()
		evs, err := cr.Decide(replay[id], c)
		if err != nil || len(evs) == 0 {
			t.Fatalf("command %d (%s) on %s: %d events, %v", i, c.CommandName(), id, len(evs), err)
		}
		replay[id] = cr.Fold(replay[id], evs...)
		switch {
		case c.CommandName() == cr.CommandRegister:
			registered++
		case replay[id].Status() == cr.StatusDecommissioned:
			decommissioned++
		}
		if n := len(g.IDs()); n != resources {
			t.Fatalf("after command %d the generator draws from %d resources, want %d", i, n, resources)
		}
		if n := len(g.states); n > resources {
			t.Fatalf("after command %d the generator models %d resources, want at most %d", i, n, resources)
		}
	}
	if decommissioned < resources || registered < decommissioned {
		t.Errorf("5000 commands: %d registrations, %d decommissions; want the decommissioned resources replaced by new ones",
			registered, decommissioned)
	}
	live := 0
	for _, id := range g.IDs() {
		if s := replay[id.String()]; s.Registered() && s.Status() == cr.StatusDecommissioned {
			t.Errorf("resource %s is decommissioned but still drawn from", id)
		}
		if replay[id.String()].Registered() {
			live++
		}
	}
	t.Logf("%d registrations, %d decommissions, %d of %d resources registered at the end", registered, decommissioned, live, resources)
}
