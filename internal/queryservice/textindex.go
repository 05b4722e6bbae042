package queryservice

import (
	"cmp"
	"encoding/binary"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/google/uuid"
)

// minIndexedQ is the shortest q the text index answers: one trigram. A shorter q is checked on
// every row.
const minIndexedQ = 3

// textIndex is the index of the free-text filter q: for each trigram (three consecutive bytes)
// of a row's text, the rows whose text holds it. Every trigram of q is in the text of a row
// that contains q, so intersecting the trigrams' rows gives a superset of the matches, which
// the filter's predicate then checks on the view's rows.
//
// The index is not part of the versioned tables (a B-tree entry per trigram and row would
// cost more than the row itself), so a view and the index may be at different sequences. Adding
// a row's new trigrams before its commit keeps the index a superset of every later view; a
// trigram a row no longer has is removed only after the commit, and each such removal bumps gen.
// A view remembers gen from before it was taken: when gen has moved on, the index may lack
// trigrams of the view's rows, and the query checks every row instead.
//
// A trigram's rows are a compressed bitmap of slots (a row's number in arrival order): a
// trigram most rows hold costs a bit per row, a rare one two bytes per row holding it, and q's
// trigrams intersect container by container. The bitmaps are not safe for concurrent use: the
// writer changes them under mu's write lock, readers intersect them under its read lock.
type textIndex struct {
	gen atomic.Uint64

	// ids is the row of each slot. Only the writer changes it: it reads it without the lock,
	// appends past the length readers see, and publishes the new length under mu; a slot's id
	// never changes.
	ids   []uuid.UUID
	slots slotTable // a row's slot from its id, the writer's alone

	mu       sync.RWMutex
	postings map[uint32]*roaring.Bitmap // trigram to the slots holding it, never empty
}

func newTextIndex() *textIndex {
	return &textIndex{slots: newSlotTable(), postings: map[uint32]*roaring.Bitmap{}}
}

// textChange is one row's text before and after a batch.
type textChange struct {
	id       uuid.UUID
	old, new string
}

// textRemoval is what stage leaves to do after the commit: the trigrams a row lost.
type textRemoval struct {
	slot     uint32
	trigrams []uint32
}

// stageChunk is how many rows stage prepares before it adds their trigrams, so that a large
// batch (a snapshot's every row) holds the trigrams of a chunk only, not of the whole batch.
const stageChunk = 1024

// stage adds the trigrams each row gained and returns the removals to pass to unstage once the
// rows' new texts are committed. Readers wait only while the postings change, not while the
// rows' trigrams are computed; adding a chunk's trigrams before the next one's keeps the index
// a superset of the committed rows all along.
func (x *textIndex) stage(changes []textChange) []textRemoval {
	type addition struct {
		slot     uint32
		trigrams []uint32
	}
	var removals []textRemoval
	additions := make([]addition, 0, min(len(changes), stageChunk))
	for chunk := range slices.Chunk(changes, stageChunk) {
		additions = additions[:0]
		ids := x.ids
		for _, c := range chunk {
			slot, ok := x.slots.find(ids, c.id)
			if !ok {
				slot = uint32(len(ids))
				ids = append(ids, c.id)
				x.slots.insert(ids, slot)
			}
			added, removed := diffSorted(trigrams(c.new), trigrams(c.old))
			if len(added) > 0 {
				additions = append(additions, addition{slot: slot, trigrams: added})
			}
			if len(removed) > 0 {
				removals = append(removals, textRemoval{slot: slot, trigrams: removed})
			}
		}
		x.mu.Lock()
		x.ids = ids
		for _, a := range additions {
			for _, t := range a.trigrams {
				p := x.postings[t]
				if p == nil {
					p = roaring.New()
					x.postings[t] = p
				}
				p.Add(a.slot)
			}
		}
		x.mu.Unlock()
	}
	return removals
}

// addRows indexes the texts of rows in the empty index (so there is nothing to remove).
func (x *textIndex) addRows(rows []*resource) {
	texts := make([]textChange, len(rows))
	for i, r := range rows {
		texts[i] = textChange{id: r.id(), new: r.text()}
	}
	x.stage(texts)
}

// unstage removes trigrams rows no longer have; their new texts must be committed.
func (x *textIndex) unstage(removals []textRemoval) {
	if len(removals) == 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.gen.Add(1)
	for _, r := range removals {
		for _, t := range r.trigrams {
			if p := x.postings[t]; p != nil {
				p.Remove(r.slot)
				if p.IsEmpty() {
					delete(x.postings, t)
				}
			}
		}
	}
}

// candidates returns the ids of the rows whose text may contain q (lower-case, at least
// minIndexedQ bytes), or ok false when q is shorter or the index may have lost trigrams of a
// view taken at generation gen.
func (x *textIndex) candidates(q string, gen uint64) (ids []uuid.UUID, ok bool) {
	if len(q) < minIndexedQ {
		return nil, false
	}
	qt := trigrams(q)
	slots, ids, ok := x.intersect(qt, gen)
	if !ok || slots == nil {
		return nil, ok
	}
	// Outside the lock: the bitmap is this reader's, and a slot's id never changes.
	out := make([]uuid.UUID, 0, slots.GetCardinality())
	slots.Iterate(func(slot uint32) bool {
		out = append(out, ids[slot])
		return true
	})
	return out, true
}

// intersect returns a new bitmap of the slots holding every trigram of qt (nil when one has
// none) and the ids of the slots, or ok false when gen has moved on.
func (x *textIndex) intersect(qt []uint32, gen uint64) (slots *roaring.Bitmap, ids []uuid.UUID, ok bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.gen.Load() != gen {
		return nil, nil, false
	}
	type posting struct {
		slots *roaring.Bitmap
		n     uint64
	}
	lists := make([]posting, len(qt))
	for i, t := range qt {
		p := x.postings[t]
		if p == nil {
			return nil, nil, true
		}
		lists[i] = posting{p, p.GetCardinality()}
	}
	// The rarest first: every intersection is then at most its size.
	slices.SortFunc(lists, func(a, b posting) int { return cmp.Compare(a.n, b.n) })
	if len(lists) == 1 {
		return lists[0].slots.Clone(), x.ids, true
	}
	slots = roaring.And(lists[0].slots, lists[1].slots)
	for _, l := range lists[2:] {
		if slots.IsEmpty() {
			break
		}
		slots.And(l.slots)
	}
	return slots, x.ids, true
}

// trigrams returns the distinct trigrams of s, ascending, leaving out those that hold sep:
// they span two fields of a row's text, and q, which holds no sep, never looks one up.
func trigrams(s string) []uint32 {
	if len(s) < 3 {
		return nil
	}
	out := make([]uint32, 0, len(s)-2)
	for i := 0; i+3 <= len(s); i++ {
		if s[i] == sep || s[i+1] == sep || s[i+2] == sep {
			continue
		}
		out = append(out, uint32(s[i])<<16|uint32(s[i+1])<<8|uint32(s[i+2]))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// diffSorted returns what a has and b lacks, and what b has and a lacks; both ascending.
func diffSorted(a, b []uint32) (onlyA, onlyB []uint32) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && a[i] < b[j]:
			onlyA = append(onlyA, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			onlyB = append(onlyB, b[j])
			j++
		default:
			i++
			j++
		}
	}
	return onlyA, onlyB
}

// appendSnapshot appends the index for a snapshot of a view taken at generation gen: the ids
// by slot, then each trigram (ascending) with its bitmap in roaring's portable format. ok is
// false when the index has lost trigrams since gen (a row's text changed after the view): it
// may then lack trigrams of the view's rows, and a snapshot holds no index (the rows' texts
// are indexed anew on load). Trigrams and rows added since the view only add candidates.
func (x *textIndex) appendSnapshot(b []byte, gen uint64) ([]byte, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.gen.Load() != gen {
		return b, false
	}
	b = binary.AppendUvarint(b, uint64(len(x.ids)))
	for _, id := range x.ids {
		b = append(b, id[:]...)
	}
	b = binary.AppendUvarint(b, uint64(len(x.postings)))
	for _, t := range slices.Sorted(maps.Keys(x.postings)) {
		data, err := x.postings[t].ToBytes()
		if err != nil {
			return b, false
		}
		b = binary.LittleEndian.AppendUint32(b, t)
		b = binary.AppendUvarint(b, uint64(len(data)))
		b = append(b, data...)
	}
	return b, true
}

// loadSnapshot fills the empty index from appendSnapshot's bytes; false, with the index left
// empty, when they do not read.
func (x *textIndex) loadSnapshot(b []byte) bool {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k)/16 {
		return false
	}
	b = b[k:]
	ids, slots := make([]uuid.UUID, n), newSlotTable()
	for i := range ids {
		ids[i] = uuid.UUID(b[16*i : 16*i+16])
		if _, dup := slots.find(ids, ids[i]); dup {
			return false
		}
		slots.insert(ids, uint32(i))
	}
	b = b[16*n:]
	count, k := binary.Uvarint(b)
	if k <= 0 || count > uint64(len(b)) {
		return false
	}
	b = b[k:]
	postings := make(map[uint32]*roaring.Bitmap, count)
	for range count {
		if len(b) < 4 {
			return false
		}
		t := binary.LittleEndian.Uint32(b)
		size, k := binary.Uvarint(b[4:])
		if k <= 0 || size > uint64(len(b)-4-k) {
			return false
		}
		p := roaring.New()
		if err := p.UnmarshalBinary(b[4+k : 4+k+int(size)]); err != nil || p.IsEmpty() || p.Maximum() >= uint32(n) || postings[t] != nil {
			return false
		}
		postings[t] = p
		b = b[4+k+int(size):]
	}
	if len(b) != 0 {
		return false
	}
	x.mu.Lock()
	x.ids, x.slots, x.postings = ids, slots, postings
	x.mu.Unlock()
	return true
}
