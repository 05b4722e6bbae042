package api

import (
	"strconv"
	"unicode/utf8"
)

// The client sends a command and the service answers one with every request: their JSON is
// written here by hand, byte for byte what json.Marshal writes (HTML characters escaped
// included), because encoding/json's reflection was a large part of the CPU of a command.
// FuzzRequestEncoding and FuzzCommandReplyJSON compare the two.

// MarshalJSON encodes r exactly as encoding/json encodes the struct, without reflection.
func (r CommandReply) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 64+len(r.AggregateID)+len(r.Events)*96)
	return r.appendJSON(b), nil
}

func (r *CommandReply) appendJSON(b []byte) []byte {
	o := objectWriter{b: append(b, '{')}
	o.string("aggregate_id", r.AggregateID)
	o.uint("version", r.Version)
	o.name("events")
	if r.Events == nil {
		o.b = append(o.b, "null"...)
	} else {
		o.b = append(o.b, '[')
		for i := range r.Events {
			if i > 0 {
				o.b = append(o.b, ',')
			}
			e := objectWriter{b: append(o.b, '{')}
			e.string("type", r.Events[i].Type)
			e.string("id", r.Events[i].ID)
			e.uint("sequence", r.Events[i].Sequence)
			o.b = append(e.b, '}')
		}
		o.b = append(o.b, ']')
	}
	if r.Duplicate {
		o.name("duplicate")
		o.b = append(o.b, "true"...)
	}
	return append(o.b, '}')
}

// appendRequest appends the JSON of a command request, given as Do gets it (a pointer to one
// of the command types), as json.Marshal writes it. ok is false for any other type, and for a
// timestamp json.Marshal refuses to encode: then json.Marshal must do it.
func appendRequest(b []byte, req any) (out []byte, ok bool) {
	o := objectWriter{b: append(b, '{')}
	switch r := req.(type) {
	case *Register:
		ok = o.envelope(&r.Envelope)
		if r.AggregateID != "" {
			o.string("aggregate_id", r.AggregateID)
		}
		o.string("hostname", r.Hostname)
		o.string("resource_type", r.ResourceType)
	case *AssignOrganization:
		ok = o.target(&r.Target)
		o.string("organization_id", r.OrganizationID)
	case *AssignLocation:
		ok = o.target(&r.Target)
		o.string("location_id", r.LocationID)
	case *AssignOwner:
		ok = o.target(&r.Target)
		o.string("owner_id", r.OwnerID)
	case *AddPolicy:
		ok = o.target(&r.Target)
		o.string("policy_id", r.PolicyID)
	case *RemovePolicy:
		ok = o.target(&r.Target)
		o.string("policy_id", r.PolicyID)
	case *AssignAccountConcept:
		ok = o.target(&r.Target)
		o.string("concept_id", r.ConceptID)
	case *ClearAccountConcept:
		ok = o.target(&r.Target)
	case *SetHardwareDetails:
		ok = o.target(&r.Target)
		o.optional("manufacturer", r.Manufacturer)
		o.optional("model", r.Model)
		o.optional("serial_number", r.SerialNumber)
	case *AssignAssetTag:
		ok = o.target(&r.Target)
		o.string("asset_tag", r.AssetTag)
	case *UpdateMetadata:
		ok = o.target(&r.Target)
		o.string("key", r.Key)
		o.string("value", r.Value)
	case *ChangeStatus:
		ok = o.target(&r.Target)
		o.string("status", r.Status)
	}
	if !ok {
		return b, false
	}
	return append(o.b, '}'), true
}

// objectWriter appends the members of a JSON object, a comma before each but the first.
type objectWriter struct {
	b       []byte
	members int
}

func (o *objectWriter) name(name string) {
	if o.members > 0 {
		o.b = append(o.b, ',')
	}
	o.members++
	o.b = append(o.b, '"')
	o.b = append(o.b, name...)
	o.b = append(o.b, '"', ':')
}

func (o *objectWriter) string(name, value string) {
	o.name(name)
	o.b = appendString(o.b, value)
}

func (o *objectWriter) uint(name string, value uint64) {
	o.name(name)
	o.b = strconv.AppendUint(o.b, value, 10)
}

// optional writes a *string member with omitempty: only when it is set, even to "".
func (o *objectWriter) optional(name string, value *string) {
	if value != nil {
		o.string(name, *value)
	}
}

// envelope writes the envelope's members, each with omitempty; false for a timestamp
// json.Marshal would refuse (time.Time.MarshalJSON's error).
func (o *objectWriter) envelope(e *Envelope) bool {
	for _, f := range [...]struct{ name, value string }{
		{"command_id", e.CommandID}, {"correlation_id", e.CorrelationID}, {"causation_id", e.CausationID},
	} {
		if f.value != "" {
			o.string(f.name, f.value)
		}
	}
	if e.Timestamp == nil {
		return true
	}
	o.name("timestamp")
	b, err := e.Timestamp.AppendText(append(o.b, '"'))
	if err != nil {
		return false
	}
	o.b = append(b, '"')
	return true
}

func (o *objectWriter) target(t *Target) bool {
	ok := o.envelope(&t.Envelope)
	o.string("aggregate_id", t.AggregateID)
	return ok
}

// appendString appends s as a JSON string the way json.Marshal does: quotes, backslashes,
// control characters and the HTML characters <, > and & escaped, invalid UTF-8 as U+FFFD,
// U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
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
