package neo4jprojector

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/google/uuid"
)

// project runs Project over events from s, failing the test on an error.
func projectAll(t testing.TB, s State, events []SequencedEvent) (State, []Effect) {
	t.Helper()
	var all []Effect
	for _, ev := range events {
		var effects []Effect
		var err error
		s, effects, err = Project(s, ev)
		if err != nil {
			t.Fatalf("project sequence %d (%s): %v", ev.Sequence, ev.Event.EventType(), err)
		}
		all = append(all, effects...)
	}
	return s, all
}

func TestProjectRandomHistoriesGiveTheGraphOfTheFold(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= 8; seed++ {
		var events []SequencedEvent
		h := newHistory(seed, 40)
		h.run(t, 3000, inMemory(&events))
		want := h.want(t)

		// One effect at a time, in stream order.
		_, effects := projectAll(t, State{}, events)
		seq := memGraph{newGraph()}
		for _, e := range effects {
			seq.applyEffect(e)
		}
		requireSameGraph(t, want, seq.graph)

		// Compiled plans over batches of random sizes, each batch projected twice (a redelivery).
		rng := rand.New(rand.NewPCG(seed, 99))
		batched := memGraph{newGraph()}
		var s State
		for i := 0; i < len(events); {
			n := 1 + rng.IntN(300)
			batch := events[i:min(i+n, len(events))]
			i += len(batch)
			var effects []Effect
			s, effects = projectAll(t, s, batch)
			batched.applyPlan(Compile(effects))
			var again []Effect
			s, again = projectAll(t, s, batch)
			if len(again) != 0 {
				t.Fatalf("seed %d: a redelivered batch gave %d effects, want none", seed, len(again))
			}
		}
		requireSameGraph(t, want, batched.graph)
	}
}

var (
	rid   = uuid.MustParse("00000000-0000-4000-8000-000000000001")
	org1  = cr.OrganizationID(uuid.MustParse("00000000-0000-4000-8000-0000000000a1"))
	pol1  = cr.PolicyID(uuid.MustParse("00000000-0000-4000-8000-0000000000b1"))
	con1  = cr.AccountConceptID(uuid.MustParse("00000000-0000-4000-8000-0000000000c1"))
	loc1  = cr.LocationID(uuid.MustParse("00000000-0000-4000-8000-0000000000d1"))
	per1  = cr.PersonID(uuid.MustParse("00000000-0000-4000-8000-0000000000e1"))
	tzero = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func meta(n int) cr.EventMeta {
	return cr.EventMeta{EventID: uuid.New(), AggregateID: rid, Timestamp: tzero.Add(time.Duration(n) * time.Minute)}
}

func TestProjectEachEvent(t *testing.T) {
	t.Parallel()
	host, _ := cr.ParseHostname("web-1.example.com")
	vm, _ := cr.ParseResourceType("vm")
	man := "Dell"
	registered := State{Checkpoint: 1, Versions: map[uuid.UUID]uint64{rid: 1}}
	id := rid.String()
	base := func(n int) Props {
		return Props{PropUpdatedAt: tzero.Add(time.Duration(n) * time.Minute), PropVersion: int64(7)}
	}
	with := func(p Props, k string, v any) Props { p[k] = v; return p }
	tests := []struct {
		name  string
		event cr.Event
		want  []Effect
	}{
		{"registered", cr.ResourceRegistered{EventMeta: meta(0), Hostname: host, Type: vm}, []Effect{CreateResource{ID: id, Props: Props{
			PropHostname: "web-1.example.com", PropResourceType: "virtual_machine", PropCategory: "compute", PropStatus: "provisioning",
			PropCreatedAt: tzero, PropUpdatedAt: tzero, PropVersion: int64(7)}}}},
		{"organization", cr.OrganizationAssigned{EventMeta: meta(1), OrganizationID: org1},
			[]Effect{SetProperties{ID: id, Props: base(1)}, ReplaceRelationship{ID: id, Rel: BelongsTo, TargetID: org1.String()}}},
		{"location", cr.LocationAssigned{EventMeta: meta(2), LocationID: loc1},
			[]Effect{SetProperties{ID: id, Props: base(2)}, ReplaceRelationship{ID: id, Rel: LocatedAt, TargetID: loc1.String()}}},
		{"owner", cr.OwnerAssigned{EventMeta: meta(3), OwnerID: per1},
			[]Effect{SetProperties{ID: id, Props: base(3)}, ReplaceRelationship{ID: id, Rel: OwnedBy, TargetID: per1.String()}}},
		{"policy added", cr.PolicyAdded{EventMeta: meta(4), PolicyID: pol1},
			[]Effect{SetProperties{ID: id, Props: base(4)}, AddRelationship{ID: id, Rel: UnderPolicy, TargetID: pol1.String()}}},
		{"policy removed", cr.PolicyRemoved{EventMeta: meta(5), PolicyID: pol1},
			[]Effect{SetProperties{ID: id, Props: base(5)}, RemoveRelationship{ID: id, Rel: UnderPolicy, TargetID: pol1.String()}}},
		{"account concept", cr.AccountConceptAssigned{EventMeta: meta(6), ConceptID: con1},
			[]Effect{SetProperties{ID: id, Props: base(6)}, ReplaceRelationship{ID: id, Rel: AccountedAs, TargetID: con1.String()}}},
		{"account concept cleared", cr.AccountConceptCleared{EventMeta: meta(7)},
			[]Effect{SetProperties{ID: id, Props: base(7)}, ClearRelationship{ID: id, Rel: AccountedAs}}},
		{"hardware, manufacturer only", cr.HardwareDetailsSet{EventMeta: meta(8), Manufacturer: &man},
			[]Effect{SetProperties{ID: id, Props: with(base(8), PropManufacturer, "Dell")}}},
		{"asset tag", cr.AssetTagAssigned{EventMeta: meta(9), AssetTag: "AT-1"},
			[]Effect{SetProperties{ID: id, Props: with(base(9), PropAssetTag, "AT-1")}}},
		{"metadata", cr.MetadataUpdated{EventMeta: meta(10), Key: "os/version", Value: "12"},
			[]Effect{SetProperties{ID: id, Props: with(base(10), "metadata.os/version", "12")}}},
		{"decommissioned", cr.StatusChanged{EventMeta: meta(11), From: cr.StatusActive, To: cr.StatusDecommissioned},
			[]Effect{SetProperties{ID: id, Props: with(base(11), PropStatus, "decommissioned")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := State{}
			if _, ok := tt.event.(cr.ResourceRegistered); !ok {
				s = State{Checkpoint: registered.Checkpoint, Versions: map[uuid.UUID]uint64{rid: 1}}
			}
			got, effects, err := Project(s, SequencedEvent{Sequence: 7, Event: tt.event})
			if err != nil {
				t.Fatal(err)
			}
			want := append(tt.want, SetCheckpoint{Sequence: 7})
			if !reflect.DeepEqual(effects, want) {
				t.Errorf("effects\n got %#v\nwant %#v", effects, want)
			}
			if got.Checkpoint != 7 || got.Versions[rid] != 7 {
				t.Errorf("state after = checkpoint %d, version %d; want 7, 7", got.Checkpoint, got.Versions[rid])
			}
		})
	}
}

func TestProjectSkipsWhatTheGraphHas(t *testing.T) {
	t.Parallel()
	ev := cr.AssetTagAssigned{EventMeta: meta(1), AssetTag: "AT-1"}
	// At or below the checkpoint: nothing at all.
	s, effects, err := Project(State{Checkpoint: 9, Versions: map[uuid.UUID]uint64{rid: 9}}, SequencedEvent{Sequence: 9, Event: ev})
	if err != nil || len(effects) != 0 || s.Checkpoint != 9 {
		t.Fatalf("at the checkpoint: %v, %v, %+v", effects, err, s)
	}
	// Above the checkpoint but at or below the resource's version (the checkpoint node was lost):
	// only the checkpoint moves.
	s, effects, err = Project(State{Checkpoint: 3, Versions: map[uuid.UUID]uint64{rid: 9}}, SequencedEvent{Sequence: 5, Event: ev})
	if err != nil || !reflect.DeepEqual(effects, []Effect{SetCheckpoint{Sequence: 5}}) || s.Checkpoint != 5 || s.Versions[rid] != 9 {
		t.Fatalf("below the version: %v, %v, %+v", effects, err, s)
	}
}

func TestProjectRefusesEventsThatDoNotFitTheGraph(t *testing.T) {
	t.Parallel()
	host, _ := cr.ParseHostname("a.example.com")
	tests := []struct {
		name  string
		state State
		event cr.Event
		want  error
	}{
		{"event of a resource never registered", State{}, cr.AssetTagAssigned{EventMeta: meta(1), AssetTag: "x"}, ErrNotRegistered},
		{"second registration", State{Checkpoint: 1, Versions: map[uuid.UUID]uint64{rid: 1}},
			cr.ResourceRegistered{EventMeta: meta(1), Hostname: host, Type: cr.ResourceTypes()[0]}, ErrAlreadyRegistered},
		{"nil event", State{Checkpoint: 1, Versions: map[uuid.UUID]uint64{rid: 1}}, nilEvent{cr.AccountConceptCleared{EventMeta: meta(1)}}, ErrUnknownEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, effects, err := Project(tt.state, SequencedEvent{Sequence: 4, Event: tt.event})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if effects != nil || got.Checkpoint != tt.state.Checkpoint {
				t.Fatalf("a refused event changed something: %v, %+v", effects, got)
			}
		})
	}
}

// nilEvent is a cr.Event the projection does not know; it embeds a real event to satisfy the
// sealed interface.
type nilEvent struct{ cr.AccountConceptCleared }

func TestCompileKeepsTheLastChangeOfEachKey(t *testing.T) {
	t.Parallel()
	a, b := "r-a", "r-b"
	p := Compile([]Effect{
		SetProperties{ID: a, Props: Props{"status": "active", "version": int64(1)}},
		ReplaceRelationship{ID: a, Rel: BelongsTo, TargetID: "o1"},
		CreateResource{ID: b, Props: Props{"status": "provisioning", "version": int64(2)}},
		AddRelationship{ID: a, Rel: UnderPolicy, TargetID: "p1"},
		RemoveRelationship{ID: a, Rel: UnderPolicy, TargetID: "p2"},
		ReplaceRelationship{ID: a, Rel: BelongsTo, TargetID: "o2"},
		SetProperties{ID: b, Props: Props{"status": "active", "version": int64(3)}},
		RemoveRelationship{ID: a, Rel: UnderPolicy, TargetID: "p1"},
		AddRelationship{ID: a, Rel: UnderPolicy, TargetID: "p2"},
		ReplaceRelationship{ID: b, Rel: AccountedAs, TargetID: "c1"},
		ClearRelationship{ID: b, Rel: AccountedAs},
		SetProperties{ID: a, Props: Props{"status": "maintenance", "version": int64(4)}},
		SetCheckpoint{Sequence: 3}, SetCheckpoint{Sequence: 4},
	})
	want := Plan{
		Creates: []ResourceRow{{ID: b, Props: Props{"status": "active", "version": int64(3)}}},
		Updates: []ResourceRow{{ID: a, Props: Props{"status": "maintenance", "version": int64(4)}}},
		Links: []RelationChanges{
			{Rel: BelongsTo, Set: []LinkRow{{ID: a, TargetID: "o2"}}},
			{Rel: AccountedAs, Set: []LinkRow{{ID: b, TargetID: ""}}},
			{Rel: UnderPolicy, Add: []LinkRow{{ID: a, TargetID: "p2"}}, Remove: []LinkRow{{ID: a, TargetID: "p1"}}},
		},
		Checkpoint: 4,
	}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("plan\n got %+v\nwant %+v", p, want)
	}
	if !Compile(nil).Empty() {
		t.Error("the plan of no effects is not empty")
	}
}
