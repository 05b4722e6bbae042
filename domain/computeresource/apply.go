package computeresource

import (
	"maps"
	"slices"
)

// Apply returns the state after event e. It never fails (an event is a fact) and never
// writes to s's maps or slices. Events are applied as recorded; Apply does not re-check
// the rules, which Decide enforced when the event was decided.
func Apply(s State, e Event) State {
	switch e := e.(type) {
	case ResourceRegistered:
		s.id = e.AggregateID
		s.hostname = e.Hostname
		s.resourceType = e.Type
		s.status = StatusProvisioning
		s.createdAt = e.Timestamp
	case OrganizationAssigned:
		s.organizationID = e.OrganizationID
	case LocationAssigned:
		s.locationID = e.LocationID
	case OwnerAssigned:
		s.ownerID = e.OwnerID
	case PolicyAdded:
		if i, found := slices.BinarySearchFunc(s.policies, e.PolicyID, comparePolicyID); !found {
			s.policies = slices.Insert(slices.Clip(s.policies), i, e.PolicyID)
		}
	case PolicyRemoved:
		if i, found := slices.BinarySearchFunc(s.policies, e.PolicyID, comparePolicyID); found {
			s.policies = slices.Delete(slices.Clone(s.policies), i, i+1)
		}
	case AccountConceptAssigned:
		s.accountConceptID = e.ConceptID
	case AccountConceptCleared:
		s.accountConceptID = AccountConceptID{}
	case HardwareDetailsSet:
		if e.Manufacturer != nil {
			s.manufacturer = ptr(*e.Manufacturer)
		}
		if e.Model != nil {
			s.model = ptr(*e.Model)
		}
		if e.SerialNumber != nil {
			s.serialNumber = ptr(*e.SerialNumber)
		}
	case AssetTagAssigned:
		s.assetTag = e.AssetTag
	case MetadataUpdated:
		md := make(map[string]string, len(s.metadata)+1)
		maps.Copy(md, s.metadata)
		md[e.Key] = e.Value
		s.metadata = md
	case StatusChanged:
		s.status = e.To
	default:
		// Unreachable: Event is sealed. A nil event changes nothing.
		return s
	}
	s.updatedAt = e.Meta().Timestamp
	return s
}

// Fold applies events in order to s: the state of a resource is Fold(State{}, history...).
func Fold(s State, events ...Event) State {
	for _, e := range events {
		s = Apply(s, e)
	}
	return s
}

func ptr(s string) *string { return &s }
