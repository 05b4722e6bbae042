package computeresource

import (
	"unicode/utf8"

	"github.com/google/uuid"
)

// readPayload decodes a payload of typ at its current version when it is in the form
// appendPayload writes: one object without spaces, every member's value a string with nothing to
// unescape, valid UTF-8 throughout, each member's name one of typ's, spelled as appendPayload
// spells it, and given once. ok is false for anything else (another spelling, a null, an escape,
// a value a field refuses...), and decodeCurrent's json v2 reading judges then; for what
// readPayload accepts, it returns what that reading returns (FuzzDecodeEventAsReference checks
// the two against encoding/json). Every reader of the stream decodes every event it reads, and
// the reflection of the general reading was most of the cost of building a read model.
func readPayload(typ string, data []byte) (e Event, ok bool) {
	var members [8]member
	ms, ok := scanPayload(data, members[:0])
	if !ok {
		return nil, false
	}
	var env envelope
	var fields [3]member // the event's own members, in the order of its names
	var seen uint16
	names := payloadNames[typ]
	for _, m := range ms {
		i := envelopeMember(m.name)
		if i < 0 {
			if i = indexOf(names, m.name); i < 0 {
				return nil, false // a name the general reading matches or skips
			}
			fields[i] = m
			i += len(envelopeNames)
		} else if !readEnvelopeMember(&env, i, m) {
			return nil, false
		}
		if seen&(1<<i) != 0 {
			return nil, false // given twice: the general reading keeps the last
		}
		seen |= 1 << i
	}
	meta := env.meta()
	given := func(i int) bool { return seen&(1<<(len(envelopeNames)+i)) != 0 }
	text := func(i int, into interface{ UnmarshalText([]byte) error }) bool {
		return !given(i) || into.UnmarshalText(fields[i].raw) == nil
	}
	str := func(i int) *string {
		if !given(i) {
			return nil
		}
		s := string(fields[i].raw)
		return &s
	}
	switch typ {
	case EventTypeResourceRegistered:
		var d ResourceRegistered
		d.EventMeta = meta
		ok = text(0, &d.Hostname) && text(1, &d.Type)
		e = d
	case EventTypeOrganizationAssigned:
		var d OrganizationAssigned
		d.EventMeta = meta
		ok = text(0, &d.OrganizationID)
		e = d
	case EventTypeLocationAssigned:
		var d LocationAssigned
		d.EventMeta = meta
		ok = text(0, &d.LocationID)
		e = d
	case EventTypeOwnerAssigned:
		var d OwnerAssigned
		d.EventMeta = meta
		ok = text(0, &d.OwnerID)
		e = d
	case EventTypePolicyAdded:
		var d PolicyAdded
		d.EventMeta = meta
		ok = text(0, &d.PolicyID)
		e = d
	case EventTypePolicyRemoved:
		var d PolicyRemoved
		d.EventMeta = meta
		ok = text(0, &d.PolicyID)
		e = d
	case EventTypeAccountConceptAssigned:
		var d AccountConceptAssigned
		d.EventMeta = meta
		ok = text(0, &d.ConceptID)
		e = d
	case EventTypeAccountConceptCleared:
		e, ok = AccountConceptCleared{EventMeta: meta}, true
	case EventTypeHardwareDetailsSet:
		e, ok = HardwareDetailsSet{EventMeta: meta, Manufacturer: str(0), Model: str(1), SerialNumber: str(2)}, true
	case EventTypeAssetTagAssigned:
		var tag string
		if s := str(0); s != nil {
			tag = *s
		}
		e, ok = AssetTagAssigned{EventMeta: meta, AssetTag: tag}, true
	case EventTypeMetadataUpdated:
		var key, value string
		if s := str(0); s != nil {
			key = *s
		}
		if s := str(1); s != nil {
			value = *s
		}
		e, ok = MetadataUpdated{EventMeta: meta, Key: key, Value: value}, true
	case EventTypeStatusChanged:
		var d StatusChanged
		d.EventMeta = meta
		ok = text(0, &d.From) && text(1, &d.To)
		e = d
	default:
		return nil, false
	}
	if !ok {
		return nil, false
	}
	return e, true
}

// payloadNames are the names of each event type's own members, as appendPayload writes them.
var payloadNames = map[string][]string{
	EventTypeResourceRegistered:     {"hostname", "resource_type"},
	EventTypeOrganizationAssigned:   {"organization_id"},
	EventTypeLocationAssigned:       {"location_id"},
	EventTypeOwnerAssigned:          {"owner_id"},
	EventTypePolicyAdded:            {"policy_id"},
	EventTypePolicyRemoved:          {"policy_id"},
	EventTypeAccountConceptAssigned: {"concept_id"},
	EventTypeAccountConceptCleared:  {},
	EventTypeHardwareDetailsSet:     {"manufacturer", "model", "serial_number"},
	EventTypeAssetTagAssigned:       {"asset_tag"},
	EventTypeMetadataUpdated:        {"key", "value"},
	EventTypeStatusChanged:          {"from_status", "to_status"},
}

// envelopeNames are the envelope's members, as appendPayload writes them.
var envelopeNames = [...]string{"event_id", "aggregate_id", "command_id", "correlation_id", "causation_id", "timestamp"}

func envelopeMember(name []byte) int { return indexOf(envelopeNames[:], name) }

func indexOf(names []string, name []byte) int {
	for i, n := range names {
		if n == string(name) {
			return i
		}
	}
	return -1
}

// readEnvelopeMember sets the i-th envelope member from m as encoding/json would: the ids by
// their UnmarshalText, the timestamp by time.Time's UnmarshalJSON of the quoted value.
func readEnvelopeMember(env *envelope, i int, m member) bool {
	var id *uuid.UUID
	switch i {
	case 0:
		id = &env.EventID
	case 1:
		id = &env.AggregateID
	case 2:
		id = &env.CommandID
	case 3:
		id = &env.CorrelationID
	case 4:
		id = &env.CausationID
	default:
		return env.Timestamp.UnmarshalJSON(m.quoted) == nil
	}
	return id.UnmarshalText(m.raw) == nil
}

// member is one member of a payload: its name, and its string value without and with quotes.
type member struct {
	name, raw, quoted []byte
}

// scanPayload reads a payload's members into out when the payload is one object without spaces
// whose values are strings, with no escape or control character in any string and valid UTF-8.
func scanPayload(data []byte, out []member) ([]member, bool) {
	if len(data) < 2 || data[0] != '{' || data[len(data)-1] != '}' || !utf8.Valid(data) {
		return nil, false
	}
	if len(data) == 2 {
		return out, true
	}
	i := 1
	for {
		name, next, ok := scanString(data, i)
		if !ok || next >= len(data) || data[next] != ':' {
			return nil, false
		}
		value, end, ok := scanString(data, next+1)
		if !ok || end >= len(data) {
			return nil, false
		}
		out = append(out, member{name: name, raw: value, quoted: data[next+1 : end]})
		switch {
		case data[end] == ',':
			i = end + 1
		case end == len(data)-1: // the closing brace
			return out, true
		default:
			return nil, false
		}
	}
}

// scanString reads the string starting at data[i] (its opening quote): its contents and the
// position after its closing quote; not ok when it is not a string or holds an escape or a
// control character.
func scanString(data []byte, i int) (s []byte, next int, ok bool) {
	if i >= len(data) || data[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			return data[i+1 : j], j + 1, true
		case c == '\\' || c < ' ':
			return nil, 0, false
		}
	}
	return nil, 0, false
}
