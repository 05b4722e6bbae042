package api

import (
	"strconv"
	"unicode/utf8"
)

// The service answers every command with a CommandReply: its JSON is written here by hand,
// byte for byte what encoding/json writes for the struct (HTML characters escaped included),
// because encoding/json's reflection was a large part of the CPU of a command.
// FuzzCommandReplyJSON compares the two.

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
