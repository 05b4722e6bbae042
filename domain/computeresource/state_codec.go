package computeresource

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// ErrCorruptState is wrapped by every error State.UnmarshalBinary returns.
var ErrCorruptState = errors.New("computeresource: corrupt encoded state")

// stateFormat is the first byte of an encoded State. Format 1 is, in order: the id (16
// bytes); hostname, resource type and status as length-prefixed strings (empty when not
// registered); organization, location, owner and account concept ids (16 bytes each, zero
// for none); the policies (uvarint count, 16 bytes each, sorted); manufacturer, model and
// serial number (a presence byte, then a length-prefixed string when present); the asset tag;
// the metadata (uvarint count, then key and value strings, sorted by key); created and updated
// times (length-prefixed time.MarshalBinary). Lengths and counts are uvarints.
const stateFormat = 1

// MarshalBinary encodes the state, for snapshots. The encoding is deterministic: equal states
// encode to equal bytes.
func (s State) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 256+16*len(s.policies)+32*len(s.metadata))
	b = append(b, stateFormat)
	b = append(b, s.id[:]...)
	b = appendUvarintString(b, s.hostname.name)
	b = appendUvarintString(b, s.resourceType.name)
	b = appendUvarintString(b, s.status.name)
	for _, id := range [][16]byte{s.organizationID, s.locationID, s.ownerID, s.accountConceptID} {
		b = append(b, id[:]...)
	}
	b = binary.AppendUvarint(b, uint64(len(s.policies)))
	for _, p := range s.policies {
		b = append(b, p[:]...)
	}
	for _, p := range []*string{s.manufacturer, s.model, s.serialNumber} {
		if p == nil {
			b = append(b, 0)
			continue
		}
		b = appendUvarintString(append(b, 1), *p)
	}
	b = appendUvarintString(b, s.assetTag)
	b = binary.AppendUvarint(b, uint64(len(s.metadata)))
	for _, k := range slices.Sorted(maps.Keys(s.metadata)) {
		b = appendUvarintString(appendUvarintString(b, k), s.metadata[k])
	}
	for _, t := range []time.Time{s.createdAt, s.updatedAt} {
		tb, err := t.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("computeresource: encode state time: %w", err)
		}
		b = appendUvarintString(b, string(tb))
	}
	return b, nil
}

// UnmarshalBinary decodes a state encoded by MarshalBinary. Every value is checked as the
// event decoder checks it (host name, resource type, status, metadata bounds), so corrupt
// bytes give an error wrapping ErrCorruptState, never an impossible state.
func (s *State) UnmarshalBinary(data []byte) error {
	r := NewBinaryReader(data)
	if f := r.Byte(); f != stateFormat {
		return fmt.Errorf("%w: unknown format %d", ErrCorruptState, f)
	}
	var out State
	out.id = r.UUID()
	if name := string(r.Bytes()); name != "" {
		if err := out.hostname.UnmarshalText([]byte(name)); err != nil {
			r.Fail(err)
		}
	}
	if name := string(r.Bytes()); name != "" {
		if err := out.resourceType.UnmarshalText([]byte(name)); err != nil {
			r.Fail(err)
		}
	}
	if name := string(r.Bytes()); name != "" {
		if err := out.status.UnmarshalText([]byte(name)); err != nil {
			r.Fail(err)
		}
	}
	out.organizationID = OrganizationID(r.UUID())
	out.locationID = LocationID(r.UUID())
	out.ownerID = PersonID(r.UUID())
	out.accountConceptID = AccountConceptID(r.UUID())
	if n := r.Count(16); n > 0 {
		out.policies = make([]PolicyID, n)
		for i := range out.policies {
			out.policies[i] = PolicyID(r.UUID())
			if i > 0 && comparePolicyID(out.policies[i-1], out.policies[i]) >= 0 {
				r.Fail(errors.New("policies not sorted or repeated"))
			}
		}
	}
	for _, p := range []**string{&out.manufacturer, &out.model, &out.serialNumber} {
		switch r.Byte() {
		case 0:
		case 1:
			v := string(r.Bytes())
			*p = &v
		default:
			r.Fail(errors.New("bad presence byte"))
		}
	}
	out.assetTag = string(r.Bytes())
	if n := r.Count(2); n > 0 {
		out.metadata = make(map[string]string, n)
		prev := ""
		for i := range n {
			k, v := string(r.Bytes()), string(r.Bytes())
			if i > 0 && k <= prev {
				r.Fail(errors.New("metadata keys not sorted or repeated"))
			}
			prev = k
			out.metadata[k] = v
		}
	}
	for _, t := range []*time.Time{&out.createdAt, &out.updatedAt} {
		if err := t.UnmarshalBinary(r.Bytes()); err != nil {
			r.Fail(err)
		}
	}
	if r.Err() == nil && r.Len() != 0 {
		r.Fail(fmt.Errorf("%d bytes after the state", r.Len()))
	}
	if r.Err() != nil {
		return fmt.Errorf("%w: %w", ErrCorruptState, r.Err())
	}
	*s = out
	return nil
}

func appendUvarintString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}
