package computeresource

import (
	"time"

	"github.com/google/uuid"
)

// EventMeta is the envelope every event carries.
type EventMeta struct {
	// EventID is a name-based UUID derived from the command id, the aggregate id and the
	// event's index within the decision: a retried command yields the same ids.
	EventID     uuid.UUID
	AggregateID uuid.UUID
	// CommandID is the command that produced the event (nil only for legacy events
	// recorded before command ids existed).
	CommandID     uuid.UUID
	CorrelationID uuid.UUID
	// CausationID is the command's CausationID when it had one, else the command id
	// (nil only for legacy events).
	CausationID uuid.UUID
	// Timestamp is the command's timestamp, in UTC.
	Timestamp time.Time
}

// Meta returns m itself; embedded in every event struct, it implements Event.Meta.
func (m EventMeta) Meta() EventMeta { return m }

// Event is one of the 12 event structs below. The interface is sealed: Apply and the
// codec know every implementation. Each struct embeds EventMeta (a field cannot share
// the name of the Meta method), so ev.EventID and ev.Meta().EventID are the same.
type Event interface {
	// Meta returns the envelope.
	Meta() EventMeta
	// EventType is the event's name ("ResourceRegistered"), the codec's type key.
	EventType() string
	isEvent()
}

// Event type names, as returned by EventType and used by the codec.
const (
	EventTypeResourceRegistered     = "ResourceRegistered"
	EventTypeOrganizationAssigned   = "OrganizationAssigned"
	EventTypeLocationAssigned       = "LocationAssigned"
	EventTypeOwnerAssigned          = "OwnerAssigned"
	EventTypePolicyAdded            = "PolicyAdded"
	EventTypePolicyRemoved          = "PolicyRemoved"
	EventTypeAccountConceptAssigned = "AccountConceptAssigned"
	EventTypeAccountConceptCleared  = "AccountConceptCleared"
	EventTypeHardwareDetailsSet     = "HardwareDetailsSet"
	EventTypeAssetTagAssigned       = "AssetTagAssigned"
	EventTypeMetadataUpdated        = "MetadataUpdated"
	EventTypeStatusChanged          = "StatusChanged"
)

// ResourceRegistered: the resource exists, in status provisioning.
type ResourceRegistered struct {
	EventMeta
	Hostname Hostname
	Type     ResourceType
}

// OrganizationAssigned: the resource belongs to the organization.
type OrganizationAssigned struct {
	EventMeta
	OrganizationID OrganizationID
}

// LocationAssigned: the resource is at the location.
type LocationAssigned struct {
	EventMeta
	LocationID LocationID
}

// OwnerAssigned: the person owns the resource.
type OwnerAssigned struct {
	EventMeta
	OwnerID PersonID
}

// PolicyAdded: the policy applies to the resource.
type PolicyAdded struct {
	EventMeta
	PolicyID PolicyID
}

// PolicyRemoved: the policy no longer applies to the resource.
type PolicyRemoved struct {
	EventMeta
	PolicyID PolicyID
}

// AccountConceptAssigned: the resource is booked against the account concept.
type AccountConceptAssigned struct {
	EventMeta
	ConceptID AccountConceptID
}

// AccountConceptCleared: the resource is booked against no account concept.
type AccountConceptCleared struct {
	EventMeta
}

// HardwareDetailsSet: the given hardware details changed; a nil field did not.
type HardwareDetailsSet struct {
	EventMeta
	Manufacturer *string
	Model        *string
	SerialNumber *string
}

// AssetTagAssigned: the resource carries the asset tag.
type AssetTagAssigned struct {
	EventMeta
	AssetTag string
}

// MetadataUpdated: the metadata key now has the value (inserted or replaced).
type MetadataUpdated struct {
	EventMeta
	Key   string
	Value string
}

// StatusChanged: the resource moved from one status to another.
type StatusChanged struct {
	EventMeta
	From Status
	To   Status
}

// EventType implements Event.
func (ResourceRegistered) EventType() string { return EventTypeResourceRegistered }

// EventType implements Event.
func (OrganizationAssigned) EventType() string { return EventTypeOrganizationAssigned }

// EventType implements Event.
func (LocationAssigned) EventType() string { return EventTypeLocationAssigned }

// EventType implements Event.
func (OwnerAssigned) EventType() string { return EventTypeOwnerAssigned }

// EventType implements Event.
func (PolicyAdded) EventType() string { return EventTypePolicyAdded }

// EventType implements Event.
func (PolicyRemoved) EventType() string { return EventTypePolicyRemoved }

// EventType implements Event.
func (AccountConceptAssigned) EventType() string { return EventTypeAccountConceptAssigned }

// EventType implements Event.
func (AccountConceptCleared) EventType() string { return EventTypeAccountConceptCleared }

// EventType implements Event.
func (HardwareDetailsSet) EventType() string { return EventTypeHardwareDetailsSet }

// EventType implements Event.
func (AssetTagAssigned) EventType() string { return EventTypeAssetTagAssigned }

// EventType implements Event.
func (MetadataUpdated) EventType() string { return EventTypeMetadataUpdated }

// EventType implements Event.
func (StatusChanged) EventType() string { return EventTypeStatusChanged }

func (ResourceRegistered) isEvent()     {}
func (OrganizationAssigned) isEvent()   {}
func (LocationAssigned) isEvent()       {}
func (OwnerAssigned) isEvent()          {}
func (PolicyAdded) isEvent()            {}
func (PolicyRemoved) isEvent()          {}
func (AccountConceptAssigned) isEvent() {}
func (AccountConceptCleared) isEvent()  {}
func (HardwareDetailsSet) isEvent()     {}
func (AssetTagAssigned) isEvent()       {}
func (MetadataUpdated) isEvent()        {}
func (StatusChanged) isEvent()          {}
