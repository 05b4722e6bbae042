package commandservice

import (
	"encoding/binary"
	"errors"
	"fmt"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
)

// aggregateFormat is the first byte of an encoded aggregate; see marshalSnapshot.
const aggregateFormat = 2

// marshalSnapshot encodes what the cache knows of the aggregate, except the results of
// commands that changed nothing (they are in the results bucket, looked up when needed).
// stream is the creation time of the event stream (unix nanoseconds): a snapshot of an earlier
// stream of the same name is not used. Format 2, with uvarint counts and lengths:
//
//	format byte, stream, lastSeq, lastEventID (16 bytes), encoded state (length-prefixed),
//	event type names (count, strings),
//	events with a command id (count; each: sequence minus the previous one, id, type index),
//	runs of those events per command (count; each: command id, first, count),
//	scattered results (count; each: command id, version, count, then type, id, sequence),
//	hashes of held values (count; 8 bytes each, little-endian).
func (a *aggregate) marshalSnapshot(stream uint64) ([]byte, error) {
	state, err := a.state.MarshalBinary()
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, 64+len(state)+20*len(a.events)+24*len(a.written)+8*len(a.everHeld))
	b = append(b, aggregateFormat)
	b = binary.AppendUvarint(b, stream)
	b = binary.AppendUvarint(b, a.lastSeq)
	b = append(b, a.lastEventID[:]...)
	b = appendBytes(b, state)

	types := map[string]uint64{}
	var names []string
	for _, e := range a.events {
		if _, ok := types[e.typ]; !ok {
			types[e.typ] = uint64(len(names))
			names = append(names, e.typ)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, n := range names {
		b = appendBytes(b, []byte(n))
	}
	b = binary.AppendUvarint(b, uint64(len(a.events)))
	prev := uint64(0)
	for _, e := range a.events {
		b = binary.AppendUvarint(b, e.seq-prev)
		b = append(b, e.id[:]...)
		b = binary.AppendUvarint(b, types[e.typ])
		prev = e.seq
	}
	b = binary.AppendUvarint(b, uint64(len(a.written)))
	for id, run := range a.written {
		b = append(b, id[:]...)
		b = binary.AppendUvarint(b, uint64(run.first))
		b = binary.AppendUvarint(b, uint64(run.count))
	}
	b = binary.AppendUvarint(b, uint64(len(a.scattered)))
	for id, r := range a.scattered {
		b = append(b, id[:]...)
		b = binary.AppendUvarint(b, r.version)
		b = binary.AppendUvarint(b, uint64(len(r.events)))
		for _, e := range r.events {
			b = appendBytes(b, []byte(e.Type))
			b = appendBytes(b, []byte(e.ID))
			b = binary.AppendUvarint(b, e.Sequence)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(a.everHeld)))
	for h := range a.everHeld {
		b = binary.LittleEndian.AppendUint64(b, h)
	}
	return b, nil
}

// unmarshalSnapshot decodes what marshalSnapshot encoded, checking that it is consistent.
func unmarshalSnapshot(data []byte) (a aggregate, stream uint64, err error) {
	r := cr.NewBinaryReader(data)
	if f := r.Byte(); f != aggregateFormat {
		return aggregate{}, 0, fmt.Errorf("unknown aggregate snapshot format %d", f)
	}
	stream = r.Uvarint()
	a.lastSeq = r.Uvarint()
	a.lastEventID = r.UUID()
	if err := a.state.UnmarshalBinary(r.Bytes()); err != nil && r.Err() == nil {
		r.Fail(err)
	}
	names := make([]string, r.Count(1))
	for i := range names {
		names[i] = string(r.Bytes())
	}
	if n := r.Count(18); n > 0 {
		a.events = make([]writtenEvent, n)
		prev := uint64(0)
		for i := range a.events {
			delta := r.Uvarint()
			if delta == 0 && r.Err() == nil {
				r.Fail(errors.New("event sequences not increasing"))
			}
			e := writtenEvent{seq: prev + delta, id: r.UUID()}
			if t := r.Uvarint(); t < uint64(len(names)) {
				e.typ = names[t]
			} else if r.Err() == nil {
				r.Fail(errors.New("event type index out of range"))
			}
			a.events[i], prev = e, e.seq
		}
		if prev > a.lastSeq && r.Err() == nil {
			r.Fail(errors.New("an event after the last sequence"))
		}
	}
	if n := r.Count(18); n > 0 {
		a.written = make(map[uuid.UUID]eventRun, n)
		for range n {
			id := r.UUID()
			first, count := r.Uvarint(), r.Uvarint()
			if (count == 0 || first+count > uint64(len(a.events))) && r.Err() == nil {
				r.Fail(errors.New("a command's run of events out of range"))
			}
			a.written[id] = eventRun{first: uint32(first), count: uint32(count)}
		}
	}
	if n := r.Count(18); n > 0 {
		a.scattered = make(map[uuid.UUID]commandResult, n)
		for range n {
			id := r.UUID()
			res := commandResult{version: r.Uvarint()}
			res.events = make([]api.EventRef, r.Count(3))
			for i := range res.events {
				res.events[i] = api.EventRef{Type: string(r.Bytes()), ID: string(r.Bytes()), Sequence: r.Uvarint()}
			}
			a.scattered[id] = res
		}
	}
	if n := r.Count(8); n > 0 {
		a.everHeld = make(map[uint64]struct{}, n)
		for range n {
			a.everHeld[r.Uint64()] = struct{}{}
		}
	}
	if r.Err() == nil && r.Len() != 0 {
		r.Fail(fmt.Errorf("%d bytes after the snapshot", r.Len()))
	}
	if r.Err() == nil && (a.lastSeq == 0 || !a.state.Registered()) {
		r.Fail(errors.New("a snapshot of an aggregate that has no event"))
	}
	if r.Err() != nil {
		return aggregate{}, 0, fmt.Errorf("corrupt aggregate snapshot: %w", r.Err())
	}
	return a, stream, nil
}

func appendBytes(b, v []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(v))), v...)
}
