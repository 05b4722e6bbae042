package metricsprojector

import (
	"maps"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/google/uuid"
)

// Resource is what the figures need to know of one resource: its status and its type (the
// category follows from the type). The zero Resource is a resource the projection does not know.
type Resource struct {
	Status cr.Status
	Type   cr.ResourceType
}

// Known reports whether r stands for a registered resource.
func (r Resource) Known() bool { return !r.Status.IsZero() }

// Transition is one edge of the status graph, as a StatusChanged event recorded it.
type Transition struct {
	From, To cr.Status
}

// Effects is what one event adds to the counters.
type Effects struct {
	// EventType is the event's type; every applied event counts once under it.
	EventType string
	// Transition is set for a StatusChanged event.
	Transition *Transition
}

// Step is the projection's rule, a pure function: the resource after event e, and what e adds to
// the counters. Only ResourceRegistered and StatusChanged change a resource; an event of a
// resource the projection does not know (its registration was dead-lettered) leaves it unknown,
// since the gauges cannot place a resource without a type, but it still counts.
func Step(r Resource, e cr.Event) (Resource, Effects) {
	eff := Effects{EventType: e.EventType()}
	switch e := e.(type) {
	case cr.ResourceRegistered:
		r = Resource{Status: cr.StatusProvisioning, Type: e.Type}
	case cr.StatusChanged:
		eff.Transition = &Transition{From: e.From, To: e.To}
		if r.Known() {
			r.Status = e.To
		}
	}
	return r, eff
}

// FleetKey is one series of the fleet gauge.
type FleetKey struct {
	Status cr.Status
	Type   cr.ResourceType
}

// State is the projection: every known resource that is not decommissioned, the fleet counts
// (those of decommissioned resources kept as counts only: a decommissioned resource takes no
// further event, and keeping each one would grow the state with every resource ever
// registered), the event and transition counters, and the stream sequence it stands for. It is the fold of Step over the
// stream; Apply mutates it in place because copying a map of a million resources per event is not
// an option, but it does no I/O and reads no clock, so it is as testable as a pure function.
// State is not safe for concurrent use; the projector guards it with a lock.
type State struct {
	sequence    uint64
	resources   map[uuid.UUID]Resource
	fleet       map[FleetKey]int
	events      map[string]uint64
	transitions map[Transition]uint64
}

// NewState returns the empty projection (sequence 0).
func NewState() *State {
	return &State{
		resources:   map[uuid.UUID]Resource{},
		fleet:       map[FleetKey]int{},
		events:      map[string]uint64{},
		transitions: map[Transition]uint64{},
	}
}

// Sequence is the stream sequence of the last event the state took into account: its checkpoint.
func (s *State) Sequence() uint64 { return s.sequence }

// Apply folds the event stored at stream sequence seq into the state.
func (s *State) Apply(seq uint64, e cr.Event) {
	id := e.Meta().AggregateID
	before := s.resources[id]
	after, eff := Step(before, e)
	if after != before {
		s.setResource(id, before, after)
	}
	s.events[eff.EventType]++
	if eff.Transition != nil {
		s.transitions[*eff.Transition]++
	}
	s.sequence = seq
}

// Skip moves the checkpoint over an event that is not applied (it was dead-lettered).
func (s *State) Skip(seq uint64) { s.sequence = max(s.sequence, seq) }

func (s *State) setResource(id uuid.UUID, before, after Resource) {
	if before.Known() {
		k := FleetKey(before)
		if s.fleet[k]--; s.fleet[k] == 0 {
			delete(s.fleet, k)
		}
	}
	if !after.Known() {
		delete(s.resources, id)
		return
	}
	s.fleet[FleetKey(after)]++
	if after.Status == cr.StatusDecommissioned {
		delete(s.resources, id)
		return
	}
	s.resources[id] = after
}

// Resources returns the number of known resources that are not decommissioned.
func (s *State) Resources() int { return len(s.resources) }

// Resource returns what the state knows of one resource that is not decommissioned; a
// decommissioned resource only counts in the fleet, and reads as unknown here.
func (s *State) Resource(id uuid.UUID) Resource { return s.resources[id] }

// Fleet returns the number of resources with that status and type.
func (s *State) Fleet(k FleetKey) int { return s.fleet[k] }

// Events returns the number of applied events of type typ.
func (s *State) Events(typ string) uint64 { return s.events[typ] }

// Transitions returns the number of applied StatusChanged events along t.
func (s *State) Transitions(t Transition) uint64 { return s.transitions[t] }

// clone returns a deep copy, for a snapshot taken under the lock and written outside it.
func (s *State) clone() *State {
	return &State{
		sequence:    s.sequence,
		resources:   maps.Clone(s.resources),
		fleet:       maps.Clone(s.fleet),
		events:      maps.Clone(s.events),
		transitions: maps.Clone(s.transitions),
	}
}
