package queryservice

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/jsonappend"
	"github.com/google/uuid"
)

// resource is one row of the model: a resource's state (the fold of its events by the domain's
// Apply) in the domain's binary encoding, State.MarshalBinary, read in place; the stream
// sequence of its last event; and what the indexes compare, decoded once: where each field
// starts in the encoding, the type and status by number, the times in nanoseconds.
//
// A row is one allocation without pointers: this header, then the encoded state (data). Instead
// of a cr.State with its map, pointers and strings, a row is a few hundred bytes and nothing for
// the collector to scan, and reading a row reads one block of memory, not a header here and its
// bytes elsewhere. Make rows with newRow (or rowOf), never as a composite literal: a resource
// outside such an allocation has no data. Rows are never changed once inserted (views may hold
// them): an event replaces the row.
type resource struct {
	version uint64
	created int64
	updated int64
	// off is where fields start in data: the organization id (location, owner and account
	// concept ids, then the policies, follow at fixed distances), the manufacturer (its presence
	// byte; the model and serial number follow), the asset tag, the metadata (its count) and the
	// created time.
	off         [offCount]uint32
	size        uint32 // of data
	typ, status uint8  // positions in resourceTypes and statuses
	// plain: every text of the state (host name, hardware details, asset tag, metadata) is
	// ASCII that JSON writes as it is, so appendJSON copies them without looking for escapes.
	plain bool
}

// rowHeader is where a row's data starts in its allocation: after the header, 8-byte aligned.
const rowHeader = unsafe.Sizeof(resource{})

// newRow allocates a row holding a copy of data, its version set and the rest of its header
// zero. The allocation is of 8-byte words, the header's alignment, and holds no pointer.
func newRow[T string | []byte](data T, version uint64) *resource {
	words := make([]uint64, (int(rowHeader)+len(data)+7)/8)
	r := (*resource)(unsafe.Pointer(&words[0]))
	r.version, r.size = version, uint32(len(data))
	if len(data) > 0 {
		copy(unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(r), rowHeader)), len(data)), data)
	}
	return r
}

// data is the row's encoded state; in a pivot (version 0), the key it stands for.
func (r *resource) data() string {
	if r.size == 0 {
		return ""
	}
	return unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(r), rowHeader)), r.size)
}

// Positions in resource.off.
const (
	offIDs = iota
	offManufacturer
	offAssetTag
	offMetadata
	offCreated
	offCount
)

// stateFormat is the first byte of the domain's State.MarshalBinary encoding that rows read in
// place (its layout is documented with the domain's stateFormat).
const stateFormat = 1

// hostnameAt is where the host name starts: after the format byte and the id.
const hostnameAt = 1 + 16

var (
	resourceTypes = cr.ResourceTypes()
	statuses      = cr.Statuses()
	typeNumber    = numbers(resourceTypes)
	statusNumber  = numbers(statuses)
	// The names by number, which the indexes compare and replies carry.
	typeNames     = names(resourceTypes, cr.ResourceType.String)
	categoryNames = names(resourceTypes, func(t cr.ResourceType) string { return t.Category().String() })
	statusNames   = names(statuses, cr.Status.String)
)

func names[T any](values []T, name func(T) string) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = name(v)
	}
	return out
}

func numbers[T fmt.Stringer](values []T) map[string]uint8 {
	out := make(map[string]uint8, len(values))
	for i, v := range values {
		out[v.String()] = uint8(i)
	}
	return out
}

// errCorruptRow: an encoded state a row cannot be read from.
var errCorruptRow = errors.New("queryservice: corrupt encoded state")

// newResource makes the row of a registered state.
func newResource(st cr.State, version uint64) *resource {
	data, err := st.MarshalBinary()
	if err != nil {
		// Only a time the binary encoding refuses (a zone offset that is not whole minutes),
		// which no decoded event holds.
		panic(fmt.Sprintf("queryservice: encode resource %s: %v", st.ID(), err))
	}
	r, err := rowOf(data, version)
	if err != nil {
		panic(fmt.Sprintf("queryservice: read back resource %s: %v", st.ID(), err))
	}
	return r
}

// rowOf reads a row from an encoded state. It checks the layout (every length within the
// bytes, known type and status names), not every value: the bytes come from
// State.MarshalBinary, in this process or in a snapshot.
func rowOf[T string | []byte](encoded T, version uint64) (*resource, error) {
	if uint64(len(encoded)) > math.MaxUint32 {
		return nil, fmt.Errorf("%w: %d bytes", errCorruptRow, len(encoded))
	}
	r := newRow(encoded, version)
	data := r.data()
	if len(data) < hostnameAt || data[0] != stateFormat {
		return nil, fmt.Errorf("%w: not format %d", errCorruptRow, stateFormat)
	}
	p := rowParser{s: data, i: hostnameAt, plain: true}
	p.skipText() // host name
	typ, status := p.string(), p.string()
	var ok bool
	if r.typ, ok = typeNumber[typ]; !ok {
		p.fail("resource type %q", typ)
	}
	if r.status, ok = statusNumber[status]; !ok {
		p.fail("status %q", status)
	}
	r.off[offIDs] = p.pos()
	p.skip(4 * 16)
	p.skip(16 * p.count(16))
	r.off[offManufacturer] = p.pos()
	for range 3 { // manufacturer, model, serial number
		switch p.byte() {
		case 0:
		case 1:
			p.skipText()
		default:
			p.fail("presence byte")
		}
	}
	r.off[offAssetTag] = p.pos()
	p.skipText()
	r.off[offMetadata] = p.pos()
	for n := p.count(2); n > 0; n-- {
		p.skipText()
		p.skipText()
	}
	r.off[offCreated] = p.pos()
	r.created, r.updated = p.time(), p.time()
	if p.err == nil && p.i != len(data) {
		p.fail("%d bytes after the state", len(data)-p.i)
	}
	if p.err != nil {
		return nil, p.err
	}
	r.plain = p.plain
	return r, nil
}

// rowParser walks an encoded state; after the first error it reads nothing more.
type rowParser struct {
	s     string
	i     int
	err   error
	plain bool // no text so far needs escaping in JSON
}

func (p *rowParser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("%w: %s at byte %d", errCorruptRow, fmt.Sprintf(format, args...), p.i)
	}
	p.i = len(p.s)
}

func (p *rowParser) pos() uint32 { return uint32(p.i) }

func (p *rowParser) skip(n int) {
	if n < 0 || n > len(p.s)-p.i {
		p.fail("truncated")
		return
	}
	p.i += n
}

func (p *rowParser) byte() byte {
	if p.i >= len(p.s) {
		p.fail("truncated")
		return 0
	}
	p.i++
	return p.s[p.i-1]
}

func (p *rowParser) uvarint() uint64 {
	v, n := uvarint(p.s[p.i:])
	if n <= 0 {
		p.fail("truncated or bad number")
		return 0
	}
	p.i += n
	return v
}

// count reads a count of items of at least minSize bytes each.
func (p *rowParser) count(minSize int) int {
	n := p.uvarint()
	if n > uint64(len(p.s)-p.i)/uint64(minSize) {
		p.fail("count %d", n)
		return 0
	}
	return int(n)
}

func (p *rowParser) string() string {
	n := p.count(1)
	start := p.i
	p.skip(n)
	if p.err != nil {
		return ""
	}
	return p.s[start:p.i]
}

// skipText skips a string of text (not of bytes), noting whether JSON writes it as it is.
func (p *rowParser) skipText() {
	s := p.string()
	p.plain = p.plain && jsonappend.Plain(s)
}

func (p *rowParser) time() int64 {
	var t time.Time
	if err := t.UnmarshalBinary([]byte(p.string())); err != nil {
		p.fail("time: %v", err)
	}
	return t.UnixNano()
}

// uvarint is binary.Uvarint of a string.
func uvarint(s string) (uint64, int) {
	var v uint64
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		c := s[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				return 0, -(i + 1)
			}
			return v | uint64(c)<<(7*i), i + 1
		}
		v |= uint64(c&0x7f) << (7 * i)
	}
	return 0, 0
}

// stringAt is the length-prefixed string at position i of data, and the position after it.
func stringAt(data string, i uint32) (string, uint32) {
	n, k := uvarint(data[i:])
	start := i + uint32(k)
	end := start + uint32(n)
	return data[start:end], end
}

// state decodes the row's state, for the domain's Apply.
func (r *resource) state() (cr.State, error) {
	var st cr.State
	err := st.UnmarshalBinary([]byte(r.data()))
	return st, err
}

func (r *resource) id() uuid.UUID { return uuid.UUID([]byte(r.data()[1:hostnameAt])) }

func (r *resource) hostname() string { s, _ := stringAt(r.data(), hostnameAt); return s }

func (r *resource) typeName() string { return typeNames[r.typ] }

func (r *resource) categoryName() string { return categoryNames[r.typ] }

func (r *resource) statusName() string { return statusNames[r.status] }

// idAt is the id at position i of the encoding (zero: none).
func (r *resource) idAt(i uint32) [16]byte { return [16]byte([]byte(r.data()[i : i+16])) }

func (r *resource) organizationID() [16]byte { return r.idAt(r.off[offIDs]) }

func (r *resource) locationID() [16]byte { return r.idAt(r.off[offIDs] + 16) }

func (r *resource) ownerID() [16]byte { return r.idAt(r.off[offIDs] + 32) }

func (r *resource) accountConceptID() [16]byte { return r.idAt(r.off[offIDs] + 48) }

// policies calls fn with each policy id, ascending, and the position of its bytes.
func (r *resource) policies(fn func(p [16]byte, at uint32)) {
	at := r.off[offIDs] + 64
	n, k := uvarint(r.data()[at:])
	at += uint32(k)
	for range n {
		fn(r.idAt(at), at)
		at += 16
	}
}

func (r *resource) hasPolicy(p [16]byte) bool {
	found := false
	r.policies(func(q [16]byte, _ uint32) { found = found || q == p })
	return found
}

// optional is the n-th optional string (0: manufacturer, 1: model, 2: serial number): a
// presence byte, then the string when present.
func (r *resource) optional(n int) (string, bool) {
	i := r.off[offManufacturer]
	for {
		present := r.data()[i] == 1
		s, end := "", i+1
		if present {
			s, end = stringAt(r.data(), i+1)
		}
		if n == 0 {
			return s, present
		}
		n--
		i = end
	}
}

func (r *resource) manufacturer() (string, bool) { return r.optional(0) }

func (r *resource) model() (string, bool) { return r.optional(1) }

func (r *resource) serialNumber() (string, bool) { return r.optional(2) }

func (r *resource) assetTag() string { s, _ := stringAt(r.data(), r.off[offAssetTag]); return s }

// metadata calls fn with each entry, by key ascending, and the position of the entry (its key's
// length) until fn returns false.
func (r *resource) metadata(fn func(key, value string, at uint32) bool) {
	at := r.off[offMetadata]
	n, k := uvarint(r.data()[at:])
	at += uint32(k)
	for range n {
		key, next := stringAt(r.data(), at)
		value, end := stringAt(r.data(), next)
		if !fn(key, value, at) {
			return
		}
		at = end
	}
}

// metadataAt is the entry at position at (from metadata).
func (r *resource) metadataAt(at uint32) (key, value string) {
	key, next := stringAt(r.data(), at)
	value, _ = stringAt(r.data(), next)
	return key, value
}

func (r *resource) metadataValue(key string) (value string, ok bool) {
	r.metadata(func(k, v string, _ uint32) bool {
		if k >= key {
			value, ok = v, k == key
			return false
		}
		return true
	})
	return value, ok
}

// times decodes the created and updated times as the state holds them (with their zone).
func (r *resource) times() (created, updated time.Time) {
	s, next := stringAt(r.data(), r.off[offCreated])
	_ = created.UnmarshalBinary([]byte(s)) // checked when the row was made
	s, _ = stringAt(r.data(), next)
	_ = updated.UnmarshalBinary([]byte(s))
	return created, updated
}

// textFields calls fn with each field q searches: the host name, asset tag, serial number,
// model and metadata values, those that are set and not empty.
func (r *resource) textFields(fn func(string)) {
	add := func(s string) {
		if s != "" {
			fn(s)
		}
	}
	add(r.hostname())
	add(r.assetTag())
	v, _ := r.serialNumber()
	add(v)
	v, _ = r.model()
	add(v)
	r.metadata(func(_, v string, _ uint32) bool { add(v); return true })
}

// text is what the text index holds for the row: its text fields in lower case, each followed
// by sep (a q holds no sep, so no match spans two fields).
func (r *resource) text() string {
	var b strings.Builder
	r.textFields(func(s string) {
		b.WriteString(strings.ToLower(s))
		b.WriteByte(sep)
	})
	return b.String()
}

// containsText reports whether one of the row's text fields contains q (lower-case),
// ignoring case, as strings.Contains(text(), q) does, without building the text.
func (r *resource) containsText(q string) bool {
	found := false
	r.textFields(func(s string) { found = found || containsLower(s, q) })
	return found
}

// containsLower reports whether s in lower case contains q (lower-case); without allocating
// when s is ASCII.
func containsLower(s, q string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return strings.Contains(strings.ToLower(s), q)
		}
	}
	if len(q) == 0 {
		return true
	}
	for i := 0; i+len(q) <= len(s); i++ {
		j := 0
		for j < len(q) && lowerASCII(s[i+j]) == q[j] {
			j++
		}
		if j == len(q) {
			return true
		}
	}
	return false
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// appendJSON appends the row's wire form: byte for byte what encoding/json writes for
// api.ResourceOf(state, version), without building it (TestListJSONEqualsEncodingJSON). The
// members' names, and the type, category and status members whole, are constants.
func (r *resource) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = jsonappend.UUID(b, r.id())
	b = append(b, `,"hostname":`...)
	b = r.appendString(b, r.hostname())
	b = append(b, typeMembers[r.typ]...)
	b = append(b, statusMembers[r.status]...)
	for i, name := range [...]string{`,"organization_id":`, `,"location_id":`, `,"owner_id":`, `,"account_concept_id":`} {
		if id := r.idAt(r.off[offIDs] + 16*uint32(i)); id != [16]byte{} {
			b = append(b, name...)
			b = jsonappend.UUID(b, id)
		}
	}
	b = append(b, `,"policies":[`...)
	first := true
	r.policies(func(p [16]byte, _ uint32) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = jsonappend.UUID(b, p)
	})
	b = append(b, ']')
	i := r.off[offManufacturer]
	for _, name := range [...]string{`,"manufacturer":`, `,"model":`, `,"serial_number":`} {
		present := r.data()[i] == 1
		i++
		if present {
			var v string
			v, i = stringAt(r.data(), i)
			if v != "" {
				b = append(b, name...)
				b = r.appendString(b, v)
			}
		}
	}
	if tag := r.assetTag(); tag != "" {
		b = append(b, `,"asset_tag":`...)
		b = r.appendString(b, tag)
	}
	b = append(b, `,"metadata":{`...)
	first = true
	r.metadata(func(k, v string, _ uint32) bool {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(r.appendString(b, k), ':')
		b = r.appendString(b, v)
		return true
	})
	created, updated := r.times()
	b = append(b, `},"created_at":`...)
	b = jsonappend.Time(b, created)
	b = append(b, `,"updated_at":`...)
	b = jsonappend.Time(b, updated)
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, r.version, 10)
	return append(b, '}')
}

// appendString appends one of the row's texts as a JSON string.
func (r *resource) appendString(b []byte, s string) []byte {
	if r.plain {
		return jsonappend.PlainString(b, s)
	}
	return jsonappend.String(b, s)
}

// typeMembers and statusMembers are the resource_type and category members, and the status
// member, of each type and status by number, in JSON.
var (
	typeMembers = func() []string {
		out := make([]string, len(typeNames))
		for i := range typeNames {
			out[i] = `,"resource_type":` + string(jsonappend.String(nil, typeNames[i])) +
				`,"category":` + string(jsonappend.String(nil, categoryNames[i]))
		}
		return out
	}()
	statusMembers = func() []string {
		out := make([]string, len(statusNames))
		for i := range statusNames {
			out[i] = `,"status":` + string(jsonappend.String(nil, statusNames[i]))
		}
		return out
	}()
)
