package computeresource

import (
	"fmt"

	"github.com/google/uuid"
)

// The typed ids of the things a resource refers to. Each is a distinct type so that an
// organization id cannot be passed where a location id is expected. The nil UUID is the
// zero value: it means "none" in State getters and is refused by Parse and by Decide.
type (
	// OrganizationID identifies the organization a resource belongs to.
	OrganizationID uuid.UUID
	// LocationID identifies the location (site, rack...) of a resource.
	LocationID uuid.UUID
	// PersonID identifies a person, here the owner of a resource.
	PersonID uuid.UUID
	// PolicyID identifies a policy applied to a resource.
	PolicyID uuid.UUID
	// AccountConceptID identifies the account concept a resource is booked against.
	AccountConceptID uuid.UUID
)

func parseID(kind, s string) (uuid.UUID, error) {
	u, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, fmt.Errorf("%w: %s %q is not a UUID: %v", ErrInvalidID, kind, shorten(s), err)
	}
	if u == uuid.Nil {
		return uuid.Nil, fmt.Errorf("%w: %s must not be the nil UUID", ErrInvalidID, kind)
	}
	return u, nil
}

func marshalID(kind string, u uuid.UUID) ([]byte, error) {
	if u == uuid.Nil {
		return nil, fmt.Errorf("%w: %s is the nil UUID", ErrInvalidID, kind)
	}
	return u.MarshalText()
}

// ParseOrganizationID parses a UUID string; the nil UUID is refused.
func ParseOrganizationID(s string) (OrganizationID, error) {
	u, err := parseID("organization id", s)
	return OrganizationID(u), err
}

// ParseLocationID parses a UUID string; the nil UUID is refused.
func ParseLocationID(s string) (LocationID, error) {
	u, err := parseID("location id", s)
	return LocationID(u), err
}

// ParsePersonID parses a UUID string; the nil UUID is refused.
func ParsePersonID(s string) (PersonID, error) {
	u, err := parseID("person id", s)
	return PersonID(u), err
}

// ParsePolicyID parses a UUID string; the nil UUID is refused.
func ParsePolicyID(s string) (PolicyID, error) {
	u, err := parseID("policy id", s)
	return PolicyID(u), err
}

// ParseAccountConceptID parses a UUID string; the nil UUID is refused.
func ParseAccountConceptID(s string) (AccountConceptID, error) {
	u, err := parseID("account concept id", s)
	return AccountConceptID(u), err
}

// String returns the canonical UUID form.
func (id OrganizationID) String() string { return uuid.UUID(id).String() }

// String returns the canonical UUID form.
func (id LocationID) String() string { return uuid.UUID(id).String() }

// String returns the canonical UUID form.
func (id PersonID) String() string { return uuid.UUID(id).String() }

// String returns the canonical UUID form.
func (id PolicyID) String() string { return uuid.UUID(id).String() }

// String returns the canonical UUID form.
func (id AccountConceptID) String() string { return uuid.UUID(id).String() }

// IsZero reports whether id is the nil UUID (no organization).
func (id OrganizationID) IsZero() bool { return uuid.UUID(id) == uuid.Nil }

// IsZero reports whether id is the nil UUID (no location).
func (id LocationID) IsZero() bool { return uuid.UUID(id) == uuid.Nil }

// IsZero reports whether id is the nil UUID (no person).
func (id PersonID) IsZero() bool { return uuid.UUID(id) == uuid.Nil }

// IsZero reports whether id is the nil UUID (no policy).
func (id PolicyID) IsZero() bool { return uuid.UUID(id) == uuid.Nil }

// IsZero reports whether id is the nil UUID (no account concept).
func (id AccountConceptID) IsZero() bool { return uuid.UUID(id) == uuid.Nil }

// MarshalText implements encoding.TextMarshaler; the nil UUID is an error.
func (id OrganizationID) MarshalText() ([]byte, error) {
	return marshalID("organization id", uuid.UUID(id))
}

// MarshalText implements encoding.TextMarshaler; the nil UUID is an error.
func (id LocationID) MarshalText() ([]byte, error) { return marshalID("location id", uuid.UUID(id)) }

// MarshalText implements encoding.TextMarshaler; the nil UUID is an error.
func (id PersonID) MarshalText() ([]byte, error) { return marshalID("person id", uuid.UUID(id)) }

// MarshalText implements encoding.TextMarshaler; the nil UUID is an error.
func (id PolicyID) MarshalText() ([]byte, error) { return marshalID("policy id", uuid.UUID(id)) }

// MarshalText implements encoding.TextMarshaler; the nil UUID is an error.
func (id AccountConceptID) MarshalText() ([]byte, error) {
	return marshalID("account concept id", uuid.UUID(id))
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseOrganizationID.
func (id *OrganizationID) UnmarshalText(b []byte) (err error) {
	*id, err = ParseOrganizationID(string(b))
	return err
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseLocationID.
func (id *LocationID) UnmarshalText(b []byte) (err error) {
	*id, err = ParseLocationID(string(b))
	return err
}

// UnmarshalText implements encoding.TextUnmarshaler with ParsePersonID.
func (id *PersonID) UnmarshalText(b []byte) (err error) {
	*id, err = ParsePersonID(string(b))
	return err
}

// UnmarshalText implements encoding.TextUnmarshaler with ParsePolicyID.
func (id *PolicyID) UnmarshalText(b []byte) (err error) {
	*id, err = ParsePolicyID(string(b))
	return err
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseAccountConceptID.
func (id *AccountConceptID) UnmarshalText(b []byte) (err error) {
	*id, err = ParseAccountConceptID(string(b))
	return err
}
