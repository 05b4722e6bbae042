package computeresource

import (
	"encoding/binary"
	"errors"

	"github.com/google/uuid"
)

// BinaryReader reads the binary encodings built on State.MarshalBinary's: uvarint lengths and
// counts, little-endian 64-bit integers, 16-byte UUIDs. State.UnmarshalBinary reads with it, and
// so do encodings that embed a state, such as the command service's snapshots. After the first
// error every read returns a zero value, so a decoder reads on and checks Err once; a count
// larger than the remaining bytes can hold is an error, so corrupt input never makes a large
// allocation.
type BinaryReader struct {
	b   []byte
	err error
}

// NewBinaryReader returns a reader of b.
func NewBinaryReader(b []byte) *BinaryReader { return &BinaryReader{b: b} }

// Err is the first error met, nil if none.
func (r *BinaryReader) Err() error { return r.err }

// Len is the number of bytes not read yet (0 after an error).
func (r *BinaryReader) Len() int { return len(r.b) }

// Fail records err unless an error was met before, and ends the reading.
func (r *BinaryReader) Fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

// Byte reads one byte.
func (r *BinaryReader) Byte() byte {
	if len(r.b) < 1 {
		r.Fail(errors.New("truncated"))
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// Uvarint reads an unsigned varint.
func (r *BinaryReader) Uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.Fail(errors.New("truncated or bad number"))
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Uint64 reads a little-endian 64-bit integer.
func (r *BinaryReader) Uint64() uint64 {
	if len(r.b) < 8 {
		r.Fail(errors.New("truncated"))
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

// UUID reads 16 bytes.
func (r *BinaryReader) UUID() uuid.UUID {
	var u uuid.UUID
	if len(r.b) < len(u) {
		r.Fail(errors.New("truncated"))
		return u
	}
	copy(u[:], r.b)
	r.b = r.b[len(u):]
	return u
}

// Count reads a uvarint count of items of at least minSize bytes each, refusing a count that
// the remaining bytes cannot hold.
func (r *BinaryReader) Count(minSize int) int {
	n := r.Uvarint()
	if r.err == nil && n > uint64(len(r.b))/uint64(minSize) {
		r.Fail(errors.New("bad count"))
	}
	if r.err != nil {
		return 0
	}
	return int(n)
}

// Bytes reads a uvarint length and that many bytes. The result shares the reader's input (its
// capacity ends with it, so an append to it copies).
func (r *BinaryReader) Bytes() []byte {
	n := r.Count(1)
	if r.err != nil {
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}
