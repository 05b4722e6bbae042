package computeresource

import (
	"bytes"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
)

// State is the state of one resource, the fold of its events. Its zero value is the state
// of a resource that was never registered. A State is a value: Apply returns a new one and
// never writes to the maps or slices of its input, so states may be cached and shared
// between goroutines.
type State struct {
	id               uuid.UUID
	hostname         Hostname
	resourceType     ResourceType
	status           Status
	organizationID   OrganizationID
	locationID       LocationID
	ownerID          PersonID
	accountConceptID AccountConceptID
	policies         []PolicyID // sorted, no duplicates
	manufacturer     *string
	model            *string
	serialNumber     *string
	assetTag         string
	metadata         map[string]string
	createdAt        time.Time
	updatedAt        time.Time
}

// Registered reports whether the resource was registered.
func (s State) Registered() bool { return !s.status.IsZero() }

// ID returns the resource's id (nil if not registered).
func (s State) ID() uuid.UUID { return s.id }

// Hostname returns the resource's host name.
func (s State) Hostname() Hostname { return s.hostname }

// Type returns the resource's type.
func (s State) Type() ResourceType { return s.resourceType }

// Status returns the resource's status (the zero Status if not registered).
func (s State) Status() Status { return s.status }

// OrganizationID returns the assigned organization, if any.
func (s State) OrganizationID() (OrganizationID, bool) {
	return s.organizationID, !s.organizationID.IsZero()
}

// LocationID returns the assigned location, if any.
func (s State) LocationID() (LocationID, bool) { return s.locationID, !s.locationID.IsZero() }

// OwnerID returns the assigned owner, if any.
func (s State) OwnerID() (PersonID, bool) { return s.ownerID, !s.ownerID.IsZero() }

// AccountConceptID returns the assigned account concept, if any.
func (s State) AccountConceptID() (AccountConceptID, bool) {
	return s.accountConceptID, !s.accountConceptID.IsZero()
}

// Policies returns the applied policies, sorted by id; the slice is the caller's.
func (s State) Policies() []PolicyID { return slices.Clone(s.policies) }

// HasPolicy reports whether the policy is applied.
func (s State) HasPolicy(id PolicyID) bool {
	_, found := slices.BinarySearchFunc(s.policies, id, comparePolicyID)
	return found
}

// Manufacturer returns the manufacturer, if set.
func (s State) Manufacturer() (string, bool) { return deref(s.manufacturer) }

// Model returns the model, if set.
func (s State) Model() (string, bool) { return deref(s.model) }

// SerialNumber returns the serial number, if set.
func (s State) SerialNumber() (string, bool) { return deref(s.serialNumber) }

// AssetTag returns the asset tag, if set.
func (s State) AssetTag() (string, bool) { return s.assetTag, s.assetTag != "" }

// Metadata returns a copy of the metadata entries (never nil).
func (s State) Metadata() map[string]string {
	out := make(map[string]string, len(s.metadata))
	maps.Copy(out, s.metadata)
	return out
}

// MetadataValue returns the value of one metadata key, if present.
func (s State) MetadataValue(key string) (string, bool) {
	v, ok := s.metadata[key]
	return v, ok
}

// CreatedAt returns the time of registration.
func (s State) CreatedAt() time.Time { return s.createdAt }

// UpdatedAt returns the time of the last event.
func (s State) UpdatedAt() time.Time { return s.updatedAt }

// Equal reports whether s and o hold the same values (an empty and a nil collection are
// the same).
func (s State) Equal(o State) bool {
	return s.id == o.id && s.hostname == o.hostname && s.resourceType == o.resourceType &&
		s.status == o.status && s.organizationID == o.organizationID &&
		s.locationID == o.locationID && s.ownerID == o.ownerID &&
		s.accountConceptID == o.accountConceptID && slices.Equal(s.policies, o.policies) &&
		equalPtr(s.manufacturer, o.manufacturer) && equalPtr(s.model, o.model) &&
		equalPtr(s.serialNumber, o.serialNumber) && s.assetTag == o.assetTag &&
		maps.Equal(s.metadata, o.metadata) && s.createdAt.Equal(o.createdAt) &&
		s.updatedAt.Equal(o.updatedAt)
}

func comparePolicyID(a, b PolicyID) int { return bytes.Compare(a[:], b[:]) }

func deref(p *string) (string, bool) {
	if p == nil {
		return "", false
	}
	return *p, true
}

func equalPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
