package metricsprojector

import (
	"testing"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/workload"
	"github.com/google/uuid"
)

func TestStep(t *testing.T) {
	id := uuid.New()
	meta := cr.EventMeta{AggregateID: id}
	vm := cr.ResourceTypeVirtualMachine
	active := Resource{Status: cr.StatusActive, Type: vm}
	tests := []struct {
		name   string
		before Resource
		event  cr.Event
		after  Resource
		trans  *Transition
	}{
		{"registration places the resource in provisioning", Resource{}, cr.ResourceRegistered{EventMeta: meta, Type: vm},
			Resource{Status: cr.StatusProvisioning, Type: vm}, nil},
		{"status change moves it and counts the edge", Resource{Status: cr.StatusProvisioning, Type: vm},
			cr.StatusChanged{EventMeta: meta, From: cr.StatusProvisioning, To: cr.StatusActive},
			active, &Transition{From: cr.StatusProvisioning, To: cr.StatusActive}},
		{"status change of an unknown resource counts the edge only", Resource{},
			cr.StatusChanged{EventMeta: meta, From: cr.StatusActive, To: cr.StatusMaintenance},
			Resource{}, &Transition{From: cr.StatusActive, To: cr.StatusMaintenance}},
		{"other events change nothing the figures show", active, cr.OwnerAssigned{EventMeta: meta}, active, nil},
		{"decommissioning", active, cr.StatusChanged{EventMeta: meta, From: cr.StatusActive, To: cr.StatusDecommissioned},
			Resource{Status: cr.StatusDecommissioned, Type: vm}, &Transition{From: cr.StatusActive, To: cr.StatusDecommissioned}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			after, eff := Step(tt.before, tt.event)
			if after != tt.after {
				t.Errorf("resource = %+v, want %+v", after, tt.after)
			}
			if eff.EventType != tt.event.EventType() {
				t.Errorf("event type = %q, want %q", eff.EventType, tt.event.EventType())
			}
			if (eff.Transition == nil) != (tt.trans == nil) || eff.Transition != nil && *eff.Transition != *tt.trans {
				t.Errorf("transition = %v, want %v", eff.Transition, tt.trans)
			}
		})
	}
}

// fold runs a random valid history through the domain and through the projection.
func fold(t *testing.T, seed uint64, resources, commands int) (*State, *expected) {
	t.Helper()
	g := workload.New(seed, resources)
	s := NewState()
	exp := newExpected()
	states := map[uuid.UUID]cr.State{}
	seq := uint64(0)
	for range commands {
		c := g.Next()
		if c == nil {
			break
		}
		evs, err := cr.Decide(states[c.AggregateID()], c)
		if err != nil {
			t.Fatalf("decide %s: %v", c.CommandName(), err)
		}
		states[c.AggregateID()] = cr.Fold(states[c.AggregateID()], evs...)
		for _, e := range evs {
			seq++
			s.Apply(seq, e)
			exp.count(e)
		}
	}
	exp.fleetFrom(g.States())
	return s, exp
}

func TestStateEqualsTheDomainFold(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		s, exp := fold(t, seed, 80, 3000)
		exp.check(t, figuresOf(s))
		// The fleet counts are a derived index: they must equal a recount of the resources,
		// but for the decommissioned ones, which are kept as counts only.
		recount := map[FleetKey]int{}
		for _, r := range s.resources {
			recount[FleetKey(r)]++
		}
		for k, n := range s.fleet {
			if k.Status == cr.StatusDecommissioned {
				recount[k] = n
			}
		}
		if len(recount) != len(s.fleet) {
			t.Fatalf("seed %d: fleet has %d keys, recount %d", seed, len(s.fleet), len(recount))
		}
		for k, n := range recount {
			if s.fleet[k] != n {
				t.Errorf("seed %d: fleet[%v] = %d, recount %d", seed, k, s.fleet[k], n)
			}
		}
	}
}

// A decommissioned resource takes no further event: the state keeps it as a count only, so a
// fleet that renews itself does not grow the state with every resource ever registered, and
// the figures, snapshot round trip included, still equal the domain's fold.
func TestDecommissionedResourcesAreKeptAsCounts(t *testing.T) {
	const resources = 20
	g := workload.New(5, resources)
	g.DecommissionWeight = 100
	g.Renew = true
	s, exp := NewState(), newExpected()
	states := map[uuid.UUID]cr.State{}
	seq := uint64(0)
	for range 5000 {
		c := g.Next()
		evs, err := cr.Decide(states[c.AggregateID()], c)
		if err != nil {
			t.Fatalf("decide %s: %v", c.CommandName(), err)
		}
		states[c.AggregateID()] = cr.Fold(states[c.AggregateID()], evs...)
		for _, e := range evs {
			seq++
			s.Apply(seq, e)
			exp.count(e)
		}
	}
	decommissioned := 0
	for _, st := range states {
		if st.Status() == cr.StatusDecommissioned {
			decommissioned++
		}
	}
	if decommissioned < 10*resources {
		t.Fatalf("only %d resources decommissioned; the test needs a fleet that renews itself", decommissioned)
	}
	if n := s.Resources(); n > resources {
		t.Errorf("the state holds %d resources of %d registered, %d of them decommissioned; want at most the %d that are not",
			n, len(states), decommissioned, resources)
	}
	exp.fleetFrom(states)
	exp.check(t, figuresOf(s))
	data, err := encodeSnapshot(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeSnapshot(data)
	if err != nil {
		t.Fatal(err)
	}
	exp.check(t, figuresOf(got))
}

func TestSnapshotRoundTrip(t *testing.T) {
	s, _ := fold(t, 7, 200, 2000)
	data, err := encodeSnapshot(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeSnapshot(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.sequence != s.sequence || len(got.resources) != len(s.resources) {
		t.Fatalf("decoded sequence %d with %d resources, want %d with %d", got.sequence, len(got.resources), s.sequence, len(s.resources))
	}
	for id, r := range s.resources {
		if got.resources[id] != r {
			t.Fatalf("resource %s = %+v, want %+v", id, got.resources[id], r)
		}
	}
	if a, b := figuresOf(got), figuresOf(s); !equalFigures(a, b) {
		t.Fatalf("figures differ after a round trip:\n%v\n%v", a, b)
	}

	if _, err := decodeSnapshot(data[:len(data)/2]); err == nil {
		t.Error("a truncated snapshot decoded")
	}
}
