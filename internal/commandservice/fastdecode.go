package commandservice

import (
	"time"
	"unicode/utf8"

	"github.com/cim-infra/registry/pkg/api"
)

// decodeFast decodes the usual command request into v (a pointer to a command request type of
// package api) in one pass over data, without reflection: one JSON object, at most maxBytes
// long, whose members are all fields of the request, spelled exactly as their JSON names,
// with JSON string values that need no unescaping and are valid UTF-8, and nothing after it
// but white space. v must point to a zero value. decodeFast reports false, with *v zero
// again, for anything else (a name in another case, a number or null, an escape sequence, a
// bad timestamp, a syntax error...): the caller then decodes with encoding/json
// (decodeReference), which decides what such input means and words the error. Wherever
// decodeFast reports true, encoding/json decodes data into the same value without error
// (FuzzDecodeFast checks it).
func decodeFast(data []byte, maxBytes int, v any) bool {
	if len(data) > maxBytes {
		return false
	}
	switch req := v.(type) {
	case *api.Register:
		return decodeMembers(data, req, func(r *api.Register, name, value []byte) bool {
			switch string(name) {
			case "aggregate_id":
				r.AggregateID = unquote(value)
			case "hostname":
				r.Hostname = unquote(value)
			case "resource_type":
				r.ResourceType = unquote(value)
			default:
				return envelopeMember(&r.Envelope, name, value)
			}
			return true
		})
	case *api.AssignOrganization:
		return decodeMembers(data, req, func(r *api.AssignOrganization, name, value []byte) bool {
			return stringMember(name, value, "organization_id", &r.OrganizationID) || targetMember(&r.Target, name, value)
		})
	case *api.AssignLocation:
		return decodeMembers(data, req, func(r *api.AssignLocation, name, value []byte) bool {
			return stringMember(name, value, "location_id", &r.LocationID) || targetMember(&r.Target, name, value)
		})
	case *api.AssignOwner:
		return decodeMembers(data, req, func(r *api.AssignOwner, name, value []byte) bool {
			return stringMember(name, value, "owner_id", &r.OwnerID) || targetMember(&r.Target, name, value)
		})
	case *api.AddPolicy:
		return decodeMembers(data, req, func(r *api.AddPolicy, name, value []byte) bool {
			return stringMember(name, value, "policy_id", &r.PolicyID) || targetMember(&r.Target, name, value)
		})
	case *api.RemovePolicy:
		return decodeMembers(data, req, func(r *api.RemovePolicy, name, value []byte) bool {
			return stringMember(name, value, "policy_id", &r.PolicyID) || targetMember(&r.Target, name, value)
		})
	case *api.AssignAccountConcept:
		return decodeMembers(data, req, func(r *api.AssignAccountConcept, name, value []byte) bool {
			return stringMember(name, value, "concept_id", &r.ConceptID) || targetMember(&r.Target, name, value)
		})
	case *api.ClearAccountConcept:
		return decodeMembers(data, req, func(r *api.ClearAccountConcept, name, value []byte) bool {
			return targetMember(&r.Target, name, value)
		})
	case *api.SetHardwareDetails:
		return decodeMembers(data, req, func(r *api.SetHardwareDetails, name, value []byte) bool {
			var p **string
			switch string(name) {
			case "manufacturer":
				p = &r.Manufacturer
			case "model":
				p = &r.Model
			case "serial_number":
				p = &r.SerialNumber
			default:
				return targetMember(&r.Target, name, value)
			}
			s := unquote(value)
			*p = &s
			return true
		})
	case *api.AssignAssetTag:
		return decodeMembers(data, req, func(r *api.AssignAssetTag, name, value []byte) bool {
			return stringMember(name, value, "asset_tag", &r.AssetTag) || targetMember(&r.Target, name, value)
		})
	case *api.UpdateMetadata:
		return decodeMembers(data, req, func(r *api.UpdateMetadata, name, value []byte) bool {
			return stringMember(name, value, "key", &r.Key) || stringMember(name, value, "value", &r.Value) ||
				targetMember(&r.Target, name, value)
		})
	case *api.ChangeStatus:
		return decodeMembers(data, req, func(r *api.ChangeStatus, name, value []byte) bool {
			return stringMember(name, value, "status", &r.Status) || targetMember(&r.Target, name, value)
		})
	}
	return false
}

// decodeMembers decodes data into req, a zero T, with member, and makes it zero again unless
// every member was taken. A later member of the same name replaces an earlier one, as with
// encoding/json.
func decodeMembers[T any](data []byte, req *T, member func(r *T, name, value []byte) bool) bool {
	if scanObject(data, func(name, value []byte) bool { return member(req, name, value) }) {
		return true
	}
	var zero T
	*req = zero
	return false
}

// targetMember sets the member of api.Target called name.
func targetMember(t *api.Target, name, value []byte) bool {
	return stringMember(name, value, "aggregate_id", &t.AggregateID) || envelopeMember(&t.Envelope, name, value)
}

// envelopeMember sets the member of api.Envelope called name. The timestamp is parsed by
// time.Time's own UnmarshalJSON, as encoding/json would; one it refuses is left to the
// reference decoder to explain.
func envelopeMember(e *api.Envelope, name, value []byte) bool {
	switch string(name) {
	case "command_id":
		e.CommandID = unquote(value)
	case "correlation_id":
		e.CorrelationID = unquote(value)
	case "causation_id":
		e.CausationID = unquote(value)
	case "timestamp":
		t := new(time.Time)
		if t.UnmarshalJSON(value) != nil {
			return false
		}
		e.Timestamp = t
	default:
		return false
	}
	return true
}

// stringMember sets *field to the string value if name is want.
func stringMember(name, value []byte, want string, field *string) bool {
	if string(name) != want {
		return false
	}
	*field = unquote(value)
	return true
}

// unquote returns the content of a JSON string that scanObject accepted (no escapes).
func unquote(value []byte) string { return string(value[1 : len(value)-1]) }

// scanObject reads data as one JSON object followed by nothing but white space, and calls
// member for each member in order, with its name (without quotes) and its value (a JSON
// string, with its quotes). It returns false, perhaps after calling member for some members,
// as soon as member does or the input is anything else: a value that is not a string, a name
// or string value with an escape sequence or invalid UTF-8, a syntax error, trailing data.
func scanObject(data []byte, member func(name, value []byte) bool) bool {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return skipSpace(data, i+1) == len(data)
	}
	for {
		nameEnd, ok := plainString(data, i)
		if !ok {
			return false
		}
		name := data[i+1 : nameEnd-1]
		i = skipSpace(data, nameEnd)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		i = skipSpace(data, i+1)
		valueEnd, ok := plainString(data, i)
		if !ok || !member(name, data[i:valueEnd]) {
			return false
		}
		i = skipSpace(data, valueEnd)
		if i >= len(data) {
			return false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return skipSpace(data, i+1) == len(data)
		default:
			return false
		}
	}
}

// plainString reports whether a JSON string that needs no unescaping starts at data[i]: no
// escape sequence, no control character, valid UTF-8, so that its content is its bytes. end is
// the index after its closing quote.
func plainString(data []byte, i int) (end int, ok bool) {
	if i >= len(data) || data[i] != '"' {
		return 0, false
	}
	ascii := true
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			return j + 1, ascii || utf8.Valid(data[i+1:j])
		case c == '\\' || c < ' ':
			return 0, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return 0, false
}

// skipSpace returns the index of the first byte at or after i that is not JSON white space.
func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}
