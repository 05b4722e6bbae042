package computeresource

import (
	"encoding"
	"errors"
	"unicode/utf8"
)

// errNotEncoderForm is setMembers' answer for a payload it leaves to the general reading.
var errNotEncoderForm = errors.New("computeresource: payload not in the encoder's form")

// readPayload decodes a payload of typ in the form appendPayload writes: one object without
// spaces, every member's value a string with nothing to unescape, valid UTF-8 throughout, each
// member's name one of the payload's, spelled as appendPayload spells it, and given once. It
// sets the payload struct's fields (decodeWith) with the methods encoding/json calls
// (UnmarshalText, and time.Time's UnmarshalJSON of the quoted value). For anything else
// (another spelling, a name twice, a null, an escape, a value a field refuses...) ok is false,
// and decodeCurrent's json v2 reading judges; for what it accepts it reads what that reading
// reads (FuzzDecodeEventAsReference checks the two against encoding/json). The scan comes
// first, so a payload in another form costs its scan only. Every reader of the stream decodes
// every event it reads, and the general reading's reflection was most of the cost of building a
// read model.
func readPayload(typ string, data []byte) (e Event, ok bool) {
	var members [8]member
	ms, ok := scanPayload(data, members[:0])
	if !ok {
		return nil, false
	}
	e, err := decodeWith(typ, data, func(_ []byte, v any) error { return setMembers(ms, v) })
	return e, err == nil
}

// setMembers is decodeWith's unmarshal for readPayload: it sets v's fields from the payload's
// scanned members.
func setMembers(ms []member, v any) error {
	var fields [3]payloadField
	env, own := payloadFields(v, fields[:0])
	if env == nil {
		return errNotEncoderForm
	}
	envelopeFields := [...]payloadField{
		{"event_id", &env.EventID}, {"aggregate_id", &env.AggregateID}, {"command_id", &env.CommandID},
		{"correlation_id", &env.CorrelationID}, {"causation_id", &env.CausationID}, {"timestamp", nil},
	}
	var seen uint16
	for _, m := range ms {
		i := indexOf(envelopeFields[:], m.name)
		f := payloadField{}
		switch {
		case i == len(envelopeFields)-1:
			if env.Timestamp.UnmarshalJSON(m.quoted) != nil {
				return errNotEncoderForm
			}
		case i >= 0:
			f = envelopeFields[i]
		default:
			j := indexOf(own, m.name)
			if j < 0 {
				return errNotEncoderForm // a name the general reading matches or skips
			}
			i, f = len(envelopeFields)+j, own[j]
		}
		if seen&(1<<i) != 0 {
			return errNotEncoderForm // given twice: the general reading keeps the last
		}
		seen |= 1 << i
		if f.into != nil && !f.set(m.raw) {
			return errNotEncoderForm
		}
	}
	return nil
}

// payloadField is a member of a payload and the field it sets: an encoding.TextUnmarshaler,
// a *string or a **string.
type payloadField struct {
	name string
	into any
}

func (f payloadField) set(raw []byte) bool {
	switch p := f.into.(type) {
	case *string:
		*p = string(raw)
	case **string:
		s := string(raw)
		*p = &s
	case encoding.TextUnmarshaler:
		return p.UnmarshalText(raw) == nil
	default:
		return false
	}
	return true
}

// payloadFields returns v's envelope and appends its own fields, as appendPayload names them,
// to fields; a nil envelope for a type that is no payload.
func payloadFields(v any, fields []payloadField) (*envelope, []payloadField) {
	switch d := v.(type) {
	case *envelope:
		return d, fields
	case *resourceRegisteredJSON:
		return &d.envelope, append(fields, payloadField{"hostname", &d.Hostname}, payloadField{"resource_type", &d.ResourceType})
	case *organizationAssignedJSON:
		return &d.envelope, append(fields, payloadField{"organization_id", &d.OrganizationID})
	case *locationAssignedJSON:
		return &d.envelope, append(fields, payloadField{"location_id", &d.LocationID})
	case *ownerAssignedJSON:
		return &d.envelope, append(fields, payloadField{"owner_id", &d.OwnerID})
	case *policyJSON:
		return &d.envelope, append(fields, payloadField{"policy_id", &d.PolicyID})
	case *accountConceptAssignedJSON:
		return &d.envelope, append(fields, payloadField{"concept_id", &d.ConceptID})
	case *hardwareDetailsSetJSON:
		return &d.envelope, append(fields, payloadField{"manufacturer", &d.Manufacturer},
			payloadField{"model", &d.Model}, payloadField{"serial_number", &d.SerialNumber})
	case *assetTagAssignedJSON:
		return &d.envelope, append(fields, payloadField{"asset_tag", &d.AssetTag})
	case *metadataUpdatedJSON:
		return &d.envelope, append(fields, payloadField{"key", &d.Key}, payloadField{"value", &d.Value})
	case *statusChangedJSON:
		return &d.envelope, append(fields, payloadField{"from_status", &d.From}, payloadField{"to_status", &d.To})
	}
	return nil, fields
}

func indexOf(fields []payloadField, name []byte) int {
	for i, f := range fields {
		if f.name == string(name) {
			return i
		}
	}
	return -1
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
