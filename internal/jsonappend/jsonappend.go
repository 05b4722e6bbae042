// Package jsonappend writes JSON values into byte slices, byte for byte as encoding/json's
// Marshal writes them, for the replies whose encoding by reflection was most of their cost
// (a command's reply, a page of list). Tests compare each writer's output with encoding/json's.
package jsonappend

import (
	"encoding/binary"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// String appends s as a JSON string the way encoding/json's Marshal does: quotes, backslashes,
// control characters and the HTML characters <, > and & escaped, invalid UTF-8 as U+FFFD,
// U+2028 and U+2029 escaped.
func String(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if plain[c] {
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

// Plain reports whether String writes s between quotes as it is: s holds only ASCII that needs
// no escape.
func Plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || !plain[c] {
			return false
		}
	}
	return true
}

// PlainString appends s, which must be Plain, as a JSON string: between quotes.
func PlainString(b []byte, s string) []byte {
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plain is the ASCII bytes String copies as they are.
var plain = func() (t [utf8.RuneSelf]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// UUID appends id in its canonical form (uuid.UUID.String), quoted. It writes eight digits
// at a time (hex8); BenchmarkUUID measures it against encoding/hex, which it replaced.
func UUID(b []byte, id uuid.UUID) []byte {
	var buf [38]byte
	buf[0], buf[37] = '"', '"'
	binary.BigEndian.PutUint64(buf[1:9], hex8(binary.BigEndian.Uint32(id[0:4])))
	x := hex8(binary.BigEndian.Uint32(id[4:8]))
	binary.BigEndian.PutUint32(buf[10:14], uint32(x>>32))
	binary.BigEndian.PutUint32(buf[15:19], uint32(x))
	x = hex8(binary.BigEndian.Uint32(id[8:12]))
	binary.BigEndian.PutUint32(buf[20:24], uint32(x>>32))
	binary.BigEndian.PutUint32(buf[25:29], uint32(x))
	binary.BigEndian.PutUint64(buf[29:37], hex8(binary.BigEndian.Uint32(id[12:16])))
	buf[9], buf[14], buf[19], buf[24] = '-', '-', '-', '-'
	return append(b, buf[:]...)
}

// hex8 is the eight lower-case hexadecimal digits of v, the first in the most significant
// byte: each nibble is spread to a byte of its own, then made a digit in every byte at once
// ('0' plus the nibble, and 'a'-'0'-10 more where the nibble is above 9).
func hex8(v uint32) uint64 {
	x := uint64(v)
	x = (x | x<<16) & 0x0000ffff0000ffff
	x = (x | x<<8) & 0x00ff00ff00ff00ff
	x = (x | x<<4) & 0x0f0f0f0f0f0f0f0f
	above9 := (x + 0x0606060606060606) >> 4 & 0x0101010101010101
	return x + 0x3030303030303030 + above9*('a'-'0'-10)
}

// Time appends t as time.Time's MarshalJSON does (RFC 3339 with nanoseconds, its zone kept).
// A year outside 0 to 9999, which MarshalJSON refuses, is written all the same. A time in UTC
// of a year from 1 to 9999 (every time the registry stamps) is written here, by digit pairs;
// the others by time.Time.AppendFormat.
func Time(b []byte, t time.Time) []byte {
	b = append(b, '"')
	if sec := t.Unix(); t.Location() == time.UTC && sec >= minUTCUnix && sec < maxUTCUnix {
		b = appendUTC(b, t)
	} else {
		b = t.AppendFormat(b, time.RFC3339Nano)
	}
	return append(b, '"')
}

// The Unix seconds of 0001-01-01 and 10000-01-01, the years appendUTC writes.
const (
	minUTCUnix = -62135596800
	maxUTCUnix = 253402300800
)

// appendUTC writes t (in UTC, of a year from 1 to 9999) as time.RFC3339Nano does: the fraction
// without its trailing zeros, none if it is zero.
func appendUTC(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	h, m, s := t.Clock()
	nsec := t.Nanosecond()
	b = append(b, pairs[year/100*2], pairs[year/100*2+1], pairs[year%100*2], pairs[year%100*2+1], '-',
		pairs[month*2], pairs[month*2+1], '-', pairs[day*2], pairs[day*2+1], 'T',
		pairs[h*2], pairs[h*2+1], ':', pairs[m*2], pairs[m*2+1], ':', pairs[s*2], pairs[s*2+1])
	if nsec != 0 {
		// Nine digits, the first alone and the others by pairs, then the trailing zeros dropped.
		p1, p2, p3, p4 := nsec%1e8/1e6, nsec%1e6/1e4, nsec%1e4/100, nsec%100
		frac := [10]byte{'.', byte('0' + nsec/1e8),
			pairs[p1*2], pairs[p1*2+1], pairs[p2*2], pairs[p2*2+1], pairs[p3*2], pairs[p3*2+1], pairs[p4*2], pairs[p4*2+1]}
		n := len(frac)
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, 'Z')
}

// pairs holds the two digits of each number from 0 to 99, at twice the number.
var pairs = func() (p [200]byte) {
	for i := range 100 {
		p[2*i], p[2*i+1] = byte('0'+i/10), byte('0'+i%10)
	}
	return p
}()

// Object appends the members of a JSON object, a comma before each but the first. Open it with
// Open, close it with Close.
type Object struct {
	B       []byte
	members int
}

// Open starts an object at the end of b.
func Open(b []byte) Object { return Object{B: append(b, '{')} }

// Close ends the object and returns the bytes.
func (o *Object) Close() []byte { return append(o.B, '}') }

// Name appends a member's name (which must need no escaping) and the colon.
func (o *Object) Name(name string) {
	if o.members > 0 {
		o.B = append(o.B, ',')
	}
	o.members++
	o.B = append(o.B, '"')
	o.B = append(o.B, name...)
	o.B = append(o.B, '"', ':')
}

// String appends a string member.
func (o *Object) String(name, value string) {
	o.Name(name)
	o.B = String(o.B, value)
}

// Uint appends an unsigned number member.
func (o *Object) Uint(name string, value uint64) {
	o.Name(name)
	o.B = strconv.AppendUint(o.B, value, 10)
}
