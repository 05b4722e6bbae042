package computeresource

import (
	"encoding/binary"
	"testing"

	"github.com/google/uuid"
)

// TestBinaryReader: each read takes what its writer wrote; a short or bad read fails, and every
// read after a failure returns a zero value; a count the input cannot hold fails before any
// allocation could follow it.
func TestBinaryReader(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	b := []byte{7}
	b = binary.AppendUvarint(b, 300)
	b = binary.LittleEndian.AppendUint64(b, 1<<60+5)
	b = append(b, id[:]...)
	b = binary.AppendUvarint(b, 3)
	b = append(b, "abc"...)
	r := NewBinaryReader(b)
	if c, v, u, id2, s := r.Byte(), r.Uvarint(), r.Uint64(), r.UUID(), r.Bytes(); c != 7 || v != 300 || u != 1<<60+5 || id2 != id || string(s) != "abc" || cap(s) != 3 {
		t.Fatalf("read %d %d %d %s %q (cap %d)", c, v, u, id2, s, cap(s))
	}
	if r.Err() != nil || r.Len() != 0 {
		t.Fatalf("after every read: %v, %d bytes left", r.Err(), r.Len())
	}

	r = NewBinaryReader([]byte{1, 2, 3})
	if r.UUID() != uuid.Nil || r.Err() == nil {
		t.Fatalf("a UUID from 3 bytes: %v", r.Err())
	}
	if r.Byte() != 0 || r.Uvarint() != 0 || r.Len() != 0 {
		t.Fatal("a read after a failure returned a value")
	}

	huge := binary.AppendUvarint(nil, 1<<40)
	r = NewBinaryReader(append(huge, make([]byte, 100)...))
	if n := r.Count(1); n != 0 || r.Err() == nil {
		t.Fatalf("a count of 2^40 in 100 bytes: %d, %v", n, r.Err())
	}
	r = NewBinaryReader(append(binary.AppendUvarint(nil, 10), make([]byte, 79)...))
	if n := r.Count(8); n != 0 || r.Err() == nil {
		t.Fatalf("10 items of 8 bytes in 79: %d, %v", n, r.Err())
	}
	r = NewBinaryReader([]byte{0x80})
	if r.Uvarint() != 0 || r.Err() == nil {
		t.Fatal("a truncated uvarint read")
	}
}
