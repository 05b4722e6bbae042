package computeresource

import (
	"encoding/hex"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// appendPayload appends the payload of e at its current schema version, byte for byte what
// marshalPayload (encoding/json) makes of it, without reflection: every command appends an
// event, and encoding/json's encoder was a tenth of the command service's own CPU. ok is false
// when the reference encoder must judge (a timestamp outside the years 0 to 9999, which
// time.Time refuses to encode), and then b is returned as it was. e must have passed
// validateEvent. FuzzAppendPayload compares the two encodings.
func appendPayload(b []byte, e Event) (out []byte, ok bool) {
	start := len(b)
	m := e.Meta()
	b = appendUUIDMember(b, `{"event_id":`, m.EventID)
	b = appendUUIDMember(b, `,"aggregate_id":`, m.AggregateID)
	if m.CommandID != uuid.Nil {
		b = appendUUIDMember(b, `,"command_id":`, m.CommandID)
	}
	b = appendUUIDMember(b, `,"correlation_id":`, m.CorrelationID)
	if m.CausationID != uuid.Nil {
		b = appendUUIDMember(b, `,"causation_id":`, m.CausationID)
	}
	b = append(b, `,"timestamp":"`...)
	b, ok = appendJSONTime(b, m.Timestamp.UTC())
	if !ok {
		return b[:start], false
	}
	b = append(b, '"')
	switch e := e.(type) {
	case ResourceRegistered:
		b = appendStringMember(b, `,"hostname":`, e.Hostname.name)
		b = appendStringMember(b, `,"resource_type":`, e.Type.name)
	case OrganizationAssigned:
		b = appendUUIDMember(b, `,"organization_id":`, uuid.UUID(e.OrganizationID))
	case LocationAssigned:
		b = appendUUIDMember(b, `,"location_id":`, uuid.UUID(e.LocationID))
	case OwnerAssigned:
		b = appendUUIDMember(b, `,"owner_id":`, uuid.UUID(e.OwnerID))
	case PolicyAdded:
		b = appendUUIDMember(b, `,"policy_id":`, uuid.UUID(e.PolicyID))
	case PolicyRemoved:
		b = appendUUIDMember(b, `,"policy_id":`, uuid.UUID(e.PolicyID))
	case AccountConceptAssigned:
		b = appendUUIDMember(b, `,"concept_id":`, uuid.UUID(e.ConceptID))
	case AccountConceptCleared:
	case HardwareDetailsSet:
		if e.Manufacturer != nil {
			b = appendStringMember(b, `,"manufacturer":`, *e.Manufacturer)
		}
		if e.Model != nil {
			b = appendStringMember(b, `,"model":`, *e.Model)
		}
		if e.SerialNumber != nil {
			b = appendStringMember(b, `,"serial_number":`, *e.SerialNumber)
		}
	case AssetTagAssigned:
		b = appendStringMember(b, `,"asset_tag":`, e.AssetTag)
	case MetadataUpdated:
		b = appendStringMember(b, `,"key":`, e.Key)
		b = appendStringMember(b, `,"value":`, e.Value)
	case StatusChanged:
		b = appendStringMember(b, `,"from_status":`, e.From.name)
		b = appendStringMember(b, `,"to_status":`, e.To.name)
	default:
		return b[:start], false
	}
	return append(b, '}'), true
}

// payloadCap is the length of e's payload, or a little more, unless its strings need escaping:
// the envelope and one id take at most 374 bytes.
func payloadCap(e Event) int {
	n := 384
	switch e := e.(type) {
	case ResourceRegistered:
		n += len(e.Hostname.name) + len(e.Type.name) + 40
	case HardwareDetailsSet:
		for _, s := range []*string{e.Manufacturer, e.Model, e.SerialNumber} {
			if s != nil {
				n += len(*s) + 20
			}
		}
	case AssetTagAssigned:
		n += len(e.AssetTag) + 16
	case MetadataUpdated:
		n += len(e.Key) + len(e.Value) + 20
	case StatusChanged:
		n += len(e.From.name) + len(e.To.name) + 32
	}
	return n
}

// appendJSONTime appends t as time.Time's MarshalJSON does, without the quotes; false for the
// times it refuses.
func appendJSONTime(b []byte, t time.Time) ([]byte, bool) {
	out, err := t.AppendText(b)
	if err != nil {
		return b, false
	}
	return out, true
}

func appendUUIDMember(b []byte, name string, id uuid.UUID) []byte {
	b = append(b, name...)
	return appendJSONUUID(b, id)
}

// appendJSONUUID appends id in its canonical form, quoted, as uuid.UUID's MarshalText gives it.
func appendJSONUUID(b []byte, id uuid.UUID) []byte {
	var buf [38]byte
	buf[0], buf[9], buf[14], buf[19], buf[24], buf[37] = '"', '-', '-', '-', '-', '"'
	hex.Encode(buf[1:9], id[:4])
	hex.Encode(buf[10:14], id[4:6])
	hex.Encode(buf[15:19], id[6:8])
	hex.Encode(buf[20:24], id[8:10])
	hex.Encode(buf[25:37], id[10:])
	return append(b, buf[:]...)
}

func appendStringMember(b []byte, name, s string) []byte {
	b = append(b, name...)
	return appendJSONString(b, s)
}

// appendJSONString appends s as a JSON string the way marshalJSON's encoder does (no HTML
// escaping): quotes, backslashes and control characters escaped, invalid UTF-8 as U+FFFD,
// U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
