package computeresource

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"github.com/google/uuid"
)

// MaxMetadataKeyLength bounds a metadata key, in characters from MetadataKeyCharacters. The
// bounds of free text are in text.go.
const MaxMetadataKeyLength = 128

// MetadataKeyCharacters describes the characters allowed in a metadata key.
const MetadataKeyCharacters = "[A-Za-z0-9._/-]"

// Decide returns the events that command c produces against state s, or why it is
// refused. It is pure: the ids and time of the events come from the command.
//
// Checks run in this order, so the error is the most fundamental one: the command's own
// values (ErrInvalidInput class), then registration (ErrNotRegistered /
// ErrAlreadyRegistered), then decommissioned (ErrDecommissioned, for every command), then
// the command's rule. A command that would change nothing returns no events and no error.
func Decide(s State, c Command) ([]Event, error) {
	if err := Validate(c); err != nil {
		return nil, err
	}
	if s.Registered() && c.AggregateID() != s.id {
		return nil, fmt.Errorf("%s: %w: command for %s, state of %s", c.CommandName(), ErrWrongAggregate, c.AggregateID(), s.id)
	}
	if _, register := c.(RegisterResource); register && s.Registered() && s.status != StatusDecommissioned {
		return nil, fmt.Errorf("%s: %w: %s is registered as %q", c.CommandName(), ErrAlreadyRegistered, s.id, s.hostname)
	}
	if _, register := c.(RegisterResource); !register && !s.Registered() {
		return nil, fmt.Errorf("%s: %w: %s", c.CommandName(), ErrNotRegistered, c.AggregateID())
	}
	if s.status == StatusDecommissioned {
		return nil, fmt.Errorf("%s: %w: %s", c.CommandName(), ErrDecommissioned, s.id)
	}
	d := decision{meta: c.Metadata(), aggregate: c.AggregateID()}
	if d.meta.Timestamp.Before(s.updatedAt) {
		// Event time never goes back within a resource, whatever the clocks of the clients that
		// sent its commands: a command stamped before the resource's last event takes its time.
		d.meta.Timestamp = s.updatedAt
	}
	switch c := c.(type) {
	case RegisterResource:
		return d.emit(ResourceRegistered{EventMeta: d.next(), Hostname: c.Hostname, Type: c.Type}), nil
	case AssignOrganization:
		if s.organizationID == c.OrganizationID {
			return nil, nil
		}
		return d.emit(OrganizationAssigned{EventMeta: d.next(), OrganizationID: c.OrganizationID}), nil
	case AssignLocation:
		if s.locationID == c.LocationID {
			return nil, nil
		}
		return d.emit(LocationAssigned{EventMeta: d.next(), LocationID: c.LocationID}), nil
	case AssignOwner:
		if s.ownerID == c.OwnerID {
			return nil, nil
		}
		return d.emit(OwnerAssigned{EventMeta: d.next(), OwnerID: c.OwnerID}), nil
	case AddPolicy:
		if s.HasPolicy(c.PolicyID) {
			return nil, fmt.Errorf("%s: %w: %s", c.CommandName(), ErrPolicyAlreadyAdded, c.PolicyID)
		}
		return d.emit(PolicyAdded{EventMeta: d.next(), PolicyID: c.PolicyID}), nil
	case RemovePolicy:
		if !s.HasPolicy(c.PolicyID) {
			return nil, fmt.Errorf("%s: %w: %s", c.CommandName(), ErrPolicyNotFound, c.PolicyID)
		}
		return d.emit(PolicyRemoved{EventMeta: d.next(), PolicyID: c.PolicyID}), nil
	case AssignAccountConcept:
		if s.accountConceptID == c.ConceptID {
			return nil, nil
		}
		return d.emit(AccountConceptAssigned{EventMeta: d.next(), ConceptID: c.ConceptID}), nil
	case ClearAccountConcept:
		if s.accountConceptID.IsZero() {
			return nil, nil
		}
		return d.emit(AccountConceptCleared{EventMeta: d.next()}), nil
	case SetHardwareDetails:
		// Only what changes is recorded: a given value equal to the current one is left out.
		e := HardwareDetailsSet{
			Manufacturer: changed(s.manufacturer, c.Manufacturer),
			Model:        changed(s.model, c.Model),
			SerialNumber: changed(s.serialNumber, c.SerialNumber),
		}
		if e.Manufacturer == nil && e.Model == nil && e.SerialNumber == nil {
			return nil, nil
		}
		e.EventMeta = d.next()
		return d.emit(e), nil
	case AssignAssetTag:
		if s.assetTag == c.AssetTag {
			return nil, nil
		}
		return d.emit(AssetTagAssigned{EventMeta: d.next(), AssetTag: c.AssetTag}), nil
	case UpdateMetadata:
		if v, ok := s.metadata[c.Key]; ok && v == c.Value {
			return nil, nil
		}
		return d.emit(MetadataUpdated{EventMeta: d.next(), Key: c.Key, Value: c.Value}), nil
	case ChangeStatus:
		return decideStatus(s, c, &d)
	}
	return nil, fmt.Errorf("%w: command %T", ErrInvalidInput, c) // unreachable: Command is sealed
}

func decideStatus(s State, c ChangeStatus, d *decision) ([]Event, error) {
	if c.To == s.status {
		return nil, nil
	}
	if !s.status.CanTransitionTo(c.To) {
		return nil, fmt.Errorf("%s: %w", c.CommandName(), &TransitionError{From: s.status, To: c.To})
	}
	if s.status == StatusProvisioning && c.To == StatusActive {
		if missing := (ActivationError{MissingOrganization: s.organizationID.IsZero(), MissingLocation: s.locationID.IsZero()}); missing.MissingOrganization || missing.MissingLocation {
			return nil, fmt.Errorf("%s: %w", c.CommandName(), &missing)
		}
	}
	return d.emit(StatusChanged{EventMeta: d.next(), From: s.status, To: c.To}), nil
}

// changed returns the wanted value if it differs from the current one, else nil.
func changed(current, want *string) *string {
	if want == nil || (current != nil && *current == *want) {
		return nil
	}
	return ptr(*want)
}

// decision builds the envelopes of the events of one command.
type decision struct {
	meta      CommandMeta
	aggregate uuid.UUID
	events    []Event
	index     uint32
}

// next returns the envelope of the next event. Its id is a name-based (SHA-1) UUID in the
// namespace of the command id, named by the aggregate id and the event's index, so a
// retried command gives the same ids and two aggregates never share one.
func (d *decision) next() EventMeta {
	name := make([]byte, 0, 20)
	name = append(name, d.aggregate[:]...)
	name = binary.BigEndian.AppendUint32(name, d.index)
	d.index++
	m := EventMeta{
		EventID:       uuid.NewSHA1(d.meta.CommandID, name),
		AggregateID:   d.aggregate,
		CommandID:     d.meta.CommandID,
		CorrelationID: d.meta.CorrelationID,
		CausationID:   d.meta.CausationID,
		Timestamp:     d.meta.Timestamp.UTC(),
	}
	if m.CorrelationID == uuid.Nil {
		m.CorrelationID = d.meta.CommandID
	}
	if m.CausationID == uuid.Nil {
		m.CausationID = d.meta.CommandID
	}
	return m
}

func (d *decision) emit(e Event) []Event {
	d.events = append(d.events, e)
	return d.events
}

// validateCommand checks the command's own values, independently of any state.
// Validate checks a command's own values, without a state: nil, or the error (ErrInvalidInput)
// that Decide returns for the command whatever the state (Decide may refuse more, for example a
// command addressed to another resource). An edge that validates requests before deciding them
// needs no state for it.
func Validate(c Command) error {
	if c == nil {
		return &FieldError{Field: "command", Reason: "required"}
	}
	if err := validateCommand(c); err != nil {
		return fmt.Errorf("%s: %w", c.CommandName(), err)
	}
	return nil
}

func validateCommand(c Command) error {
	m := c.Metadata()
	switch {
	case m.CommandID == uuid.Nil:
		return &FieldError{Field: "command_id", Reason: "required (not the nil UUID)"}
	case m.Timestamp.IsZero():
		return &FieldError{Field: "timestamp", Reason: "required"}
	case c.AggregateID() == uuid.Nil:
		return &FieldError{Field: "id", Reason: "required (not the nil UUID)"}
	}
	switch c := c.(type) {
	case RegisterResource:
		if c.Hostname.IsZero() {
			return &FieldError{Field: "hostname", Reason: "required"}
		}
		if c.Type.IsZero() {
			return &FieldError{Field: "resource_type", Reason: "required"}
		}
	case AssignOrganization:
		return requireID("organization_id", c.OrganizationID.IsZero())
	case AssignLocation:
		return requireID("location_id", c.LocationID.IsZero())
	case AssignOwner:
		return requireID("owner_id", c.OwnerID.IsZero())
	case AddPolicy:
		return requireID("policy_id", c.PolicyID.IsZero())
	case RemovePolicy:
		return requireID("policy_id", c.PolicyID.IsZero())
	case AssignAccountConcept:
		return requireID("concept_id", c.ConceptID.IsZero())
	case SetHardwareDetails:
		for _, f := range []struct {
			name  string
			value *string
		}{{"manufacturer", c.Manufacturer}, {"model", c.Model}, {"serial_number", c.SerialNumber}} {
			if f.value != nil {
				if err := checkText(f.name, *f.value, 1, MaxHardwareFieldLength); err != nil {
					return err
				}
			}
		}
	case AssignAssetTag:
		return checkText("asset_tag", c.AssetTag, 1, MaxAssetTagLength)
	case UpdateMetadata:
		if err := checkMetadataKey(c.Key); err != nil {
			return err
		}
		return checkText("metadata_value", c.Value, 0, MaxMetadataValueLength)
	case ChangeStatus:
		if c.To.IsZero() {
			return &FieldError{Field: "to_status", Reason: "required"}
		}
	}
	return nil
}

func requireID(field string, zero bool) error {
	if zero {
		return &FieldError{Field: field, Reason: "required (not the nil UUID)"}
	}
	return nil
}

func checkMetadataKey(k string) error {
	fail := func(detail string) error {
		return &FieldError{Field: "metadata_key", Value: k,
			Reason: fmt.Sprintf("must be 1-%d characters from %s", MaxMetadataKeyLength, MetadataKeyCharacters) + detail}
	}
	if len(k) == 0 || len(k) > MaxMetadataKeyLength {
		return fail(fmt.Sprintf(" (has %d)", utf8.RuneCountInString(k)))
	}
	for _, r := range k {
		if r >= utf8.RuneSelf || !isMetadataKeyChar(byte(r)) {
			return fail(fmt.Sprintf(" (contains %q)", r))
		}
	}
	return nil
}

func isMetadataKeyChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '/' || c == '-'
}
