package queryservice

import (
	"encoding/binary"
	"testing"

	"github.com/google/uuid"
)

// TestSlotTable: through several growths, every id inserted is found at its slot, also ids that
// differ in one byte only (the table hashes the whole id), and ids never inserted are not found.
func TestSlotTable(t *testing.T) {
	s := newSlotTable()
	var ids []uuid.UUID
	for i := range 100000 {
		var id uuid.UUID
		if i%2 == 0 {
			id = uuid.New()
		} else {
			binary.BigEndian.PutUint32(id[12:], uint32(i)) // a run of ids alike but for their last bytes
		}
		if _, ok := s.find(ids, id); ok {
			t.Fatalf("id %d found before its insert", i)
		}
		ids = append(ids, id)
		s.insert(ids, uint32(i))
	}
	if 4*s.used > 3*len(s.entries) {
		t.Fatalf("%d entries used of %d: more than three quarters", s.used, len(s.entries))
	}
	for i, id := range ids {
		if slot, ok := s.find(ids, id); !ok || slot != uint32(i) {
			t.Fatalf("id %d: slot %d, found %v", i, slot, ok)
		}
	}
	for range 1000 {
		if slot, ok := s.find(ids, uuid.New()); ok {
			t.Fatalf("an id never inserted found at slot %d", slot)
		}
	}
}
