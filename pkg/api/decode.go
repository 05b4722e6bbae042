package api

import (
	"strconv"
	"unicode/utf8"
)

// decodeCommandReply decodes a command reply as the service writes it into r, a zero
// CommandReply, without reflection. It reports false, with r zero again, for anything else (a
// member it does not know or that appears twice, a string with an escape sequence or invalid
// UTF-8, a number that is not a plain unsigned integer, null, a syntax error, trailing data):
// json.Unmarshal then decides. Wherever it reports true, json.Unmarshal decodes data into the
// same value without error (FuzzDecodeCommandReply checks it).
func decodeCommandReply(data []byte, r *CommandReply) bool {
	s := replyScanner{data: data}
	ok := s.object(func(name []byte) (bit uint8, ok bool) {
		switch string(name) {
		case "aggregate_id":
			bit = 1
			r.AggregateID, ok = s.string()
		case "version":
			bit = 2
			r.Version, ok = s.uint()
		case "events":
			bit = 4
			r.Events, ok = s.events()
		case "duplicate":
			bit = 8
			r.Duplicate, ok = s.bool()
		}
		return bit, ok
	})
	if !ok || s.space() != len(data) {
		*r = CommandReply{}
		return false
	}
	return true
}

// isZero reports whether r is the zero CommandReply, into which decodeCommandReply decodes:
// json.Unmarshal merges into a value that is not zero, which the fast path does not imitate.
func (r *CommandReply) isZero() bool {
	return r.AggregateID == "" && r.Version == 0 && r.Events == nil && !r.Duplicate
}

// replyScanner reads the JSON of a command reply; data[i:] is what is left to read.
type replyScanner struct {
	data []byte
	i    int
}

// space skips JSON white space and returns the index of the next byte.
func (s *replyScanner) space() int {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return s.i
		}
	}
	return s.i
}

// next skips white space and reports whether the next byte is c, consuming it if so.
func (s *replyScanner) next(c byte) bool {
	if s.space() < len(s.data) && s.data[s.i] == c {
		s.i++
		return true
	}
	return false
}

// object reads an object, calling member with each member's name once the value is the next
// thing to read; member reads the value and returns the member's bit (a power of two of its
// own for each name it knows) and whether it read the value. A member member does not read, or
// one that appears twice, fails the object.
func (s *replyScanner) object(member func(name []byte) (bit uint8, ok bool)) bool {
	var seen uint8
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	for {
		s.space()
		name, ok := s.plain()
		if !ok || !s.next(':') {
			return false
		}
		s.space()
		bit, ok := member(name)
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		if s.next('}') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// plain reads a string that needs no unescaping and returns its content.
func (s *replyScanner) plain() ([]byte, bool) {
	if s.i >= len(s.data) || s.data[s.i] != '"' {
		return nil, false
	}
	ascii := true
	for j := s.i + 1; j < len(s.data); j++ {
		switch c := s.data[j]; {
		case c == '"':
			content := s.data[s.i+1 : j]
			s.i = j + 1
			return content, ascii || utf8.Valid(content)
		case c == '\\' || c < ' ':
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

func (s *replyScanner) string() (string, bool) {
	b, ok := s.plain()
	return string(b), ok
}

// uint reads an unsigned integer without sign, fraction or exponent, as a uint64 takes it.
func (s *replyScanner) uint() (uint64, bool) {
	start := s.i
	for s.i < len(s.data) && '0' <= s.data[s.i] && s.data[s.i] <= '9' {
		s.i++
	}
	digits := s.data[start:s.i]
	if len(digits) == 0 || (digits[0] == '0' && len(digits) > 1) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(digits), 10, 64)
	return n, err == nil
}

func (s *replyScanner) bool() (bool, bool) {
	for _, lit := range [...]string{"true", "false"} {
		if len(s.data)-s.i >= len(lit) && string(s.data[s.i:s.i+len(lit)]) == lit {
			s.i += len(lit)
			return lit == "true", true
		}
	}
	return false, false
}

// events reads an array of EventRef objects; an empty array is an empty slice, not nil, as
// json.Unmarshal makes it.
func (s *replyScanner) events() ([]EventRef, bool) {
	if !s.next('[') {
		return nil, false
	}
	events := []EventRef{}
	if s.next(']') {
		return events, true
	}
	for {
		var e EventRef
		s.space()
		ok := s.object(func(name []byte) (bit uint8, ok bool) {
			switch string(name) {
			case "type":
				bit = 1
				e.Type, ok = s.string()
			case "id":
				bit = 2
				e.ID, ok = s.string()
			case "sequence":
				bit = 4
				e.Sequence, ok = s.uint()
			}
			return bit, ok
		})
		if !ok {
			return nil, false
		}
		events = append(events, e)
		if s.next(']') {
			return events, true
		}
		if !s.next(',') {
			return nil, false
		}
	}
}
