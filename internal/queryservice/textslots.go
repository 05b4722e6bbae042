package queryservice

import (
	"hash/maphash"

	"github.com/google/uuid"
)

// slotTable finds a text-index row's slot from its id: an open-addressing hash table of slots,
// probed linearly, that compares ids through the index's slice of ids rather than holding them
// a second time, as a map from id to slot would. An entry is slot+1; zero is free. It is the
// writer's alone and needs no lock.
type slotTable struct {
	seed    maphash.Seed
	entries []uint32 // a power of two long, at most three quarters used
	used    int
}

func newSlotTable() slotTable { return slotTable{seed: maphash.MakeSeed()} }

// find returns the slot of id, whose id is ids[slot], if the table has it.
func (s *slotTable) find(ids []uuid.UUID, id uuid.UUID) (slot uint32, ok bool) {
	if len(s.entries) == 0 {
		return 0, false
	}
	mask := uint64(len(s.entries) - 1)
	for i := maphash.Comparable(s.seed, id) & mask; ; i = (i + 1) & mask {
		e := s.entries[i]
		if e == 0 {
			return 0, false
		}
		if ids[e-1] == id {
			return e - 1, true
		}
	}
}

// insert adds slot, which the table lacks, for the id ids[slot].
func (s *slotTable) insert(ids []uuid.UUID, slot uint32) {
	if 4*(s.used+1) > 3*len(s.entries) {
		old := s.entries
		s.entries = make([]uint32, max(64, 2*len(old)))
		for _, e := range old {
			if e != 0 {
				s.place(ids[e-1], e-1)
			}
		}
	}
	s.place(ids[slot], slot)
	s.used++
}

// place puts slot in the first free entry from id's hash on.
func (s *slotTable) place(id uuid.UUID, slot uint32) {
	mask := uint64(len(s.entries) - 1)
	i := maphash.Comparable(s.seed, id) & mask
	for s.entries[i] != 0 {
		i = (i + 1) & mask
	}
	s.entries[i] = slot + 1
}
