package computeresource

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"
	"github.com/google/uuid"
)

// EncodedEvent is an event as stored: its type name, the schema version of Data, and a
// self-contained snake_case JSON payload (envelope and fields).
type EncodedEvent struct {
	Type    string
	Version int
	Data    []byte
}

// Upcaster turns the payload of EventType at FromVersion into the payload at
// FromVersion+1. Upcasters exposes them for the event store, which applies them on read, before
// DecodeEvent.
type Upcaster struct {
	EventType   string
	FromVersion int
	Upcast      func([]byte) ([]byte, error)
}

// currentVersions is the schema version written by EncodeEvent for each event type, in
// the order of the reference. Raising one needs an Upcaster from the previous version and
// a golden file of the old version in testdata.
var currentVersions = []struct {
	typ     string
	version int
}{
	{EventTypeResourceRegistered, 2},
	{EventTypeOrganizationAssigned, 1},
	{EventTypeLocationAssigned, 1},
	{EventTypeOwnerAssigned, 1},
	{EventTypePolicyAdded, 1},
	{EventTypePolicyRemoved, 1},
	{EventTypeAccountConceptAssigned, 1},
	{EventTypeAccountConceptCleared, 1},
	{EventTypeHardwareDetailsSet, 1},
	{EventTypeAssetTagAssigned, 1},
	{EventTypeMetadataUpdated, 1},
	{EventTypeStatusChanged, 1},
}

var upcasters = []Upcaster{
	{EventType: EventTypeResourceRegistered, FromVersion: 1, Upcast: upcastResourceRegisteredV1},
}

// CurrentVersion returns the schema version EncodeEvent writes for the event type.
func CurrentVersion(typ string) (int, bool) {
	for _, cv := range currentVersions {
		if cv.typ == typ {
			return cv.version, true
		}
	}
	return 0, false
}

// EventTypes returns the names of the 12 event types.
func EventTypes() []string {
	out := make([]string, len(currentVersions))
	for i, cv := range currentVersions {
		out[i] = cv.typ
	}
	return out
}

// Upcasters returns every upcaster, each from one version to the next.
func Upcasters() []Upcaster { return append([]Upcaster(nil), upcasters...) }

// envelope is the JSON form of EventMeta; it comes first in every payload.
type envelope struct {
	EventID       uuid.UUID `json:"event_id"`
	AggregateID   uuid.UUID `json:"aggregate_id"`
	CommandID     uuid.UUID `json:"command_id,omitzero"`
	CorrelationID uuid.UUID `json:"correlation_id"`
	CausationID   uuid.UUID `json:"causation_id,omitzero"`
	Timestamp     time.Time `json:"timestamp"`
}

func toEnvelope(m EventMeta) envelope {
	return envelope{m.EventID, m.AggregateID, m.CommandID, m.CorrelationID, m.CausationID, m.Timestamp.UTC()}
}

func (e envelope) meta() EventMeta {
	return EventMeta{e.EventID, e.AggregateID, e.CommandID, e.CorrelationID, e.CausationID, e.Timestamp.UTC()}
}

type (
	resourceRegisteredJSON struct {
		envelope
		Hostname     Hostname     `json:"hostname"`
		ResourceType ResourceType `json:"resource_type"`
	}
	organizationAssignedJSON struct {
		envelope
		OrganizationID OrganizationID `json:"organization_id"`
	}
	locationAssignedJSON struct {
		envelope
		LocationID LocationID `json:"location_id"`
	}
	ownerAssignedJSON struct {
		envelope
		OwnerID PersonID `json:"owner_id"`
	}
	policyJSON struct {
		envelope
		PolicyID PolicyID `json:"policy_id"`
	}
	accountConceptAssignedJSON struct {
		envelope
		ConceptID AccountConceptID `json:"concept_id"`
	}
	hardwareDetailsSetJSON struct {
		envelope
		Manufacturer *string `json:"manufacturer,omitempty"`
		Model        *string `json:"model,omitempty"`
		SerialNumber *string `json:"serial_number,omitempty"`
	}
	assetTagAssignedJSON struct {
		envelope
		AssetTag string `json:"asset_tag"`
	}
	metadataUpdatedJSON struct {
		envelope
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	statusChangedJSON struct {
		envelope
		From Status `json:"from_status"`
		To   Status `json:"to_status"`
	}
)

// EncodeEvent encodes e at its current schema version. Equal events give identical bytes.
// An event missing a required value (an id, the timestamp, the hostname...) is refused
// with ErrMalformedEvent.
func EncodeEvent(e Event) (EncodedEvent, error) {
	if e == nil {
		return EncodedEvent{}, fmt.Errorf("%w: nil event", ErrMalformedEvent)
	}
	if err := validateEvent(e); err != nil {
		return EncodedEvent{}, err
	}
	data, ok := appendPayload(make([]byte, 0, payloadCap(e)), e)
	if !ok {
		var err error
		if data, err = marshalPayload(e); err != nil {
			return EncodedEvent{}, fmt.Errorf("%w: encoding %s: %v", ErrMalformedEvent, e.EventType(), err)
		}
	}
	version, _ := CurrentVersion(e.EventType())
	return EncodedEvent{Type: e.EventType(), Version: version, Data: data}, nil
}

// marshalPayload is the reference encoding of e's payload, with encoding/json: appendPayload
// must give the same bytes, and leaves it the events it cannot encode.
func marshalPayload(e Event) ([]byte, error) {
	env := toEnvelope(e.Meta())
	var payload any
	switch e := e.(type) {
	case ResourceRegistered:
		payload = resourceRegisteredJSON{env, e.Hostname, e.Type}
	case OrganizationAssigned:
		payload = organizationAssignedJSON{env, e.OrganizationID}
	case LocationAssigned:
		payload = locationAssignedJSON{env, e.LocationID}
	case OwnerAssigned:
		payload = ownerAssignedJSON{env, e.OwnerID}
	case PolicyAdded:
		payload = policyJSON{env, e.PolicyID}
	case PolicyRemoved:
		payload = policyJSON{env, e.PolicyID}
	case AccountConceptAssigned:
		payload = accountConceptAssignedJSON{env, e.ConceptID}
	case AccountConceptCleared:
		payload = env
	case HardwareDetailsSet:
		payload = hardwareDetailsSetJSON{env, e.Manufacturer, e.Model, e.SerialNumber}
	case AssetTagAssigned:
		payload = assetTagAssignedJSON{env, e.AssetTag}
	case MetadataUpdated:
		payload = metadataUpdatedJSON{env, e.Key, e.Value}
	case StatusChanged:
		payload = statusChangedJSON{env, e.From, e.To}
	}
	return marshalJSON(payload)
}

// DecodeEvent decodes a payload of the event type at its current schema version. An older
// version is upcast first by the reader, through the event store's registry of Upcasters, the
// one path by which events are upcast; given one, DecodeEvent returns ErrUnknownEventVersion.
// Unknown JSON fields are ignored (a newer writer may add some); a field of the wrong JSON type,
// a missing required value or an invalid one is ErrMalformedEvent. An unknown type is
// ErrUnknownEventType; a version this code does not know (older than 1 or newer than current)
// is ErrUnknownEventVersion.
func DecodeEvent(typ string, version int, data []byte) (Event, error) {
	current, ok := CurrentVersion(typ)
	if !ok {
		return nil, fmt.Errorf("%w: %q (known: %s)", ErrUnknownEventType, shorten(typ), strings.Join(EventTypes(), ", "))
	}
	if version < 1 || version > current {
		return nil, fmt.Errorf("%w: %s version %d (known: 1 to %d)", ErrUnknownEventVersion, typ, version, current)
	}
	if version < current {
		return nil, fmt.Errorf("%w: %s version %d was not upcast to version %d (see Upcasters)", ErrUnknownEventVersion, typ, version, current)
	}
	e, err := decodeCurrent(typ, data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s version %d: %v", ErrMalformedEvent, typ, version, err)
	}
	if err := validateEvent(e); err != nil {
		return nil, fmt.Errorf("%s version %d: %w", typ, version, err)
	}
	return e, nil
}

// decodeCurrent decodes a payload at the current version of typ with json v2, configured to
// read what encoding/json read: a stored event is a fact, and one that decoded must decode the
// same forever. So names match case-insensitively (but '_' and '-' count), the last of a name
// given twice wins, null leaves a field as it was, timestamps are parsed as time.Time's
// UnmarshalJSON does, invalid UTF-8 in a string becomes U+FFFD, and unknown members are
// skipped. FuzzDecodeEventAsReference compares the two. A payload in the form the encoder
// writes is read without reflection first (readPayload).
func decodeCurrent(typ string, data []byte) (Event, error) {
	if e, ok := readPayload(typ, data); ok {
		return e, nil
	}
	return decodeWith(typ, data, unmarshalStored)
}

// storedOptions are the json v2 options that read a payload as encoding/json did; see
// decodeCurrent.
var storedOptions = jsonv2.JoinOptions(
	jsonv2.MatchCaseInsensitiveNames(true),
	jsonv1.MatchCaseSensitiveDelimiter(true),
	jsonv1.MergeWithLegacySemantics(true),
	jsonv1.ParseTimeWithLooseRFC3339(true),
	jsontext.AllowDuplicateNames(true),
	jsontext.AllowInvalidUTF8(true),
)

func unmarshalStored(data []byte, v any) error { return jsonv2.Unmarshal(data, v, storedOptions) }

// decodeWith decodes a payload at the current version of typ with unmarshal.
func decodeWith(typ string, data []byte, unmarshal func([]byte, any) error) (Event, error) {
	switch typ {
	case EventTypeResourceRegistered:
		var d resourceRegisteredJSON
		err := unmarshal(data, &d)
		return ResourceRegistered{EventMeta: d.meta(), Hostname: d.Hostname, Type: d.ResourceType}, err
	case EventTypeOrganizationAssigned:
		var d organizationAssignedJSON
		err := unmarshal(data, &d)
		return OrganizationAssigned{EventMeta: d.meta(), OrganizationID: d.OrganizationID}, err
	case EventTypeLocationAssigned:
		var d locationAssignedJSON
		err := unmarshal(data, &d)
		return LocationAssigned{EventMeta: d.meta(), LocationID: d.LocationID}, err
	case EventTypeOwnerAssigned:
		var d ownerAssignedJSON
		err := unmarshal(data, &d)
		return OwnerAssigned{EventMeta: d.meta(), OwnerID: d.OwnerID}, err
	case EventTypePolicyAdded:
		var d policyJSON
		err := unmarshal(data, &d)
		return PolicyAdded{EventMeta: d.meta(), PolicyID: d.PolicyID}, err
	case EventTypePolicyRemoved:
		var d policyJSON
		err := unmarshal(data, &d)
		return PolicyRemoved{EventMeta: d.meta(), PolicyID: d.PolicyID}, err
	case EventTypeAccountConceptAssigned:
		var d accountConceptAssignedJSON
		err := unmarshal(data, &d)
		return AccountConceptAssigned{EventMeta: d.meta(), ConceptID: d.ConceptID}, err
	case EventTypeAccountConceptCleared:
		var d envelope
		err := unmarshal(data, &d)
		return AccountConceptCleared{EventMeta: d.meta()}, err
	case EventTypeHardwareDetailsSet:
		var d hardwareDetailsSetJSON
		err := unmarshal(data, &d)
		return HardwareDetailsSet{EventMeta: d.meta(), Manufacturer: d.Manufacturer, Model: d.Model, SerialNumber: d.SerialNumber}, err
	case EventTypeAssetTagAssigned:
		var d assetTagAssignedJSON
		err := unmarshal(data, &d)
		return AssetTagAssigned{EventMeta: d.meta(), AssetTag: d.AssetTag}, err
	case EventTypeMetadataUpdated:
		var d metadataUpdatedJSON
		err := unmarshal(data, &d)
		return MetadataUpdated{EventMeta: d.meta(), Key: d.Key, Value: d.Value}, err
	case EventTypeStatusChanged:
		var d statusChangedJSON
		err := unmarshal(data, &d)
		return StatusChanged{EventMeta: d.meta(), From: d.From, To: d.To}, err
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownEventType, typ) // unreachable: typ was checked
}

// validateEvent checks what any recorded event must have. It checks presence and
// well-formedness only, not the command bounds (key length...): those may change, and an
// event recorded under older bounds is still a fact.
func validateEvent(e Event) error {
	m := e.Meta()
	var missing []string
	for _, f := range []struct {
		name string
		zero bool
	}{
		{"event_id", m.EventID == uuid.Nil},
		{"aggregate_id", m.AggregateID == uuid.Nil},
		{"correlation_id", m.CorrelationID == uuid.Nil},
		{"timestamp", m.Timestamp.IsZero()},
	} {
		if f.zero {
			missing = append(missing, f.name)
		}
	}
	var strs []string
	switch e := e.(type) {
	case ResourceRegistered:
		missing = appendIf(missing, e.Hostname.IsZero(), "hostname")
		missing = appendIf(missing, e.Type.IsZero(), "resource_type")
	case OrganizationAssigned:
		missing = appendIf(missing, e.OrganizationID.IsZero(), "organization_id")
	case LocationAssigned:
		missing = appendIf(missing, e.LocationID.IsZero(), "location_id")
	case OwnerAssigned:
		missing = appendIf(missing, e.OwnerID.IsZero(), "owner_id")
	case PolicyAdded:
		missing = appendIf(missing, e.PolicyID.IsZero(), "policy_id")
	case PolicyRemoved:
		missing = appendIf(missing, e.PolicyID.IsZero(), "policy_id")
	case AccountConceptAssigned:
		missing = appendIf(missing, e.ConceptID.IsZero(), "concept_id")
	case HardwareDetailsSet:
		for _, p := range []*string{e.Manufacturer, e.Model, e.SerialNumber} {
			if p != nil {
				strs = append(strs, *p)
			}
		}
	case AssetTagAssigned:
		strs = append(strs, e.AssetTag)
	case MetadataUpdated:
		missing = appendIf(missing, e.Key == "", "key")
		strs = append(strs, e.Key, e.Value)
	case StatusChanged:
		missing = appendIf(missing, e.From.IsZero(), "from_status")
		missing = appendIf(missing, e.To.IsZero(), "to_status")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s without %s", ErrMalformedEvent, e.EventType(), strings.Join(missing, ", "))
	}
	for _, s := range strs {
		if !utf8.ValidString(s) {
			return fmt.Errorf("%w: %s holds a string that is not valid UTF-8: %q", ErrMalformedEvent, e.EventType(), shorten(s))
		}
	}
	return nil
}

func appendIf(list []string, cond bool, name string) []string {
	if cond {
		return append(list, name)
	}
	return list
}

// marshalJSON is json.Marshal without HTML escaping: payloads are data, not HTML, and
// "R&D" reads better than "R\u0026D". Like json.Marshal it is deterministic (struct
// fields in declaration order, map keys sorted).
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
