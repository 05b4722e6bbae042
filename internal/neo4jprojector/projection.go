// Package neo4jprojector projects the compute resource events into a Neo4j graph read model.
//
// It follows the guide's split: Project is a pure function from (projection state, event) to
// (state, effects), tested without a database; Compile reduces the effects of a batch to a Plan
// of a few UNWIND statements, and the Sink executes a plan with its checkpoint in one write
// transaction. The graph model is documented in docs/graph-model.md.
package neo4jprojector

import (
	"errors"
	"fmt"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/google/uuid"
)

// Errors of events that can never be projected (the sink dead-letters them).
var (
	// ErrNotRegistered: an event for a resource the graph does not hold.
	ErrNotRegistered = errors.New("neo4jprojector: resource is not registered in the graph")
	// ErrAlreadyRegistered: a second registration of a resource the graph holds.
	ErrAlreadyRegistered = errors.New("neo4jprojector: resource is already registered in the graph")
	// ErrUnknownEvent: an event type the projection does not know.
	ErrUnknownEvent = errors.New("neo4jprojector: unknown event type")
)

// State is what the projection knows of the graph: the checkpoint and the version of the
// resources a batch touches. The sink loads it inside the write transaction.
//
// Project takes ownership of the state it is given (it updates Versions in place) and returns the
// next one: do not use a state after passing it to Project.
type State struct {
	// Checkpoint is the stream sequence of the last event applied; events at or below it are
	// skipped.
	Checkpoint uint64
	// Versions maps the id of every resource in the graph (of those the batch touches) to the
	// stream sequence of its last applied event; a resource absent from the map is not in the
	// graph.
	Versions map[uuid.UUID]uint64
}

// SequencedEvent is a domain event with its stream sequence, as Project takes it.
type SequencedEvent struct {
	Sequence uint64
	Event    cr.Event
}

// Project returns the state after ev and the effects that bring the graph there. An event at or
// below the checkpoint, or at or below its resource's version, yields no effect but the
// checkpoint's. An error means the event can never be projected onto this graph (for example
// an event of a resource that was never registered); the state is then returned unchanged.
func Project(s State, ev SequencedEvent) (State, []Effect, error) {
	if ev.Sequence <= s.Checkpoint {
		return s, nil, nil
	}
	if s.Versions == nil {
		s.Versions = map[uuid.UUID]uint64{}
	}
	id := ev.Event.Meta().AggregateID
	version, known := s.Versions[id]
	if known && ev.Sequence <= version {
		s.Checkpoint = ev.Sequence
		return s, []Effect{SetCheckpoint{Sequence: ev.Sequence}}, nil
	}
	effects, err := effectsOf(id, known, ev)
	if err != nil {
		return s, nil, err
	}
	s.Versions[id] = ev.Sequence
	s.Checkpoint = ev.Sequence
	return s, append(effects, SetCheckpoint{Sequence: ev.Sequence}), nil
}

func effectsOf(id uuid.UUID, known bool, ev SequencedEvent) ([]Effect, error) {
	rid := id.String()
	m := ev.Event.Meta()
	if e, ok := ev.Event.(cr.ResourceRegistered); ok {
		if known {
			return nil, fmt.Errorf("%w: %s registered again at sequence %d", ErrAlreadyRegistered, rid, ev.Sequence)
		}
		return []Effect{CreateResource{ID: rid, Props: Props{
			PropHostname:     e.Hostname.String(),
			PropResourceType: e.Type.String(),
			PropCategory:     e.Type.Category().String(),
			PropStatus:       cr.StatusProvisioning.String(),
			PropCreatedAt:    utc(m.Timestamp),
			PropUpdatedAt:    utc(m.Timestamp),
			PropVersion:      int64(ev.Sequence),
		}}}, nil
	}
	if !known {
		return nil, fmt.Errorf("%w: %s event %s at sequence %d", ErrNotRegistered, rid, ev.Event.EventType(), ev.Sequence)
	}
	props := Props{PropUpdatedAt: utc(m.Timestamp), PropVersion: int64(ev.Sequence)}
	var rel Effect
	switch e := ev.Event.(type) {
	case cr.OrganizationAssigned:
		rel = ReplaceRelationship{ID: rid, Rel: BelongsTo, TargetID: e.OrganizationID.String()}
	case cr.LocationAssigned:
		rel = ReplaceRelationship{ID: rid, Rel: LocatedAt, TargetID: e.LocationID.String()}
	case cr.OwnerAssigned:
		rel = ReplaceRelationship{ID: rid, Rel: OwnedBy, TargetID: e.OwnerID.String()}
	case cr.AccountConceptAssigned:
		rel = ReplaceRelationship{ID: rid, Rel: AccountedAs, TargetID: e.ConceptID.String()}
	case cr.AccountConceptCleared:
		rel = ClearRelationship{ID: rid, Rel: AccountedAs}
	case cr.PolicyAdded:
		rel = AddRelationship{ID: rid, Rel: UnderPolicy, TargetID: e.PolicyID.String()}
	case cr.PolicyRemoved:
		rel = RemoveRelationship{ID: rid, Rel: UnderPolicy, TargetID: e.PolicyID.String()}
	case cr.HardwareDetailsSet:
		setIf(props, PropManufacturer, e.Manufacturer)
		setIf(props, PropModel, e.Model)
		setIf(props, PropSerialNumber, e.SerialNumber)
	case cr.AssetTagAssigned:
		props[PropAssetTag] = e.AssetTag
	case cr.MetadataUpdated:
		props[MetadataProperty(e.Key)] = e.Value
	case cr.StatusChanged:
		props[PropStatus] = e.To.String()
	default:
		return nil, fmt.Errorf("%w: %T at sequence %d", ErrUnknownEvent, ev.Event, ev.Sequence)
	}
	effects := []Effect{SetProperties{ID: rid, Props: props}}
	if rel != nil {
		effects = append(effects, rel)
	}
	return effects, nil
}

func setIf(p Props, key string, v *string) {
	if v != nil {
		p[key] = *v
	}
}

// utc drops the monotonic reading and the zone name, so that Neo4j stores one fixed form.
func utc(t time.Time) time.Time { return t.UTC().Round(0) }
