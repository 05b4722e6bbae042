package queryservice

import "github.com/tidwall/btree"

// Walking an index and testing each row in turn waits for each row's memory: in a large model a
// row's first read is a cache miss, and the next row's address is only known from the index, so
// a walk that tests as it goes has one miss outstanding at a time. walk takes the index's
// entries a chunk at a time instead, reads the chunk's rows in one loop that depends on nothing
// but the rows' addresses (prefetch), so that the processor has all their misses outstanding at
// once, and only then tests them.

// Chunk sizes of walk: the first chunk is small, so that a lookup of one or two rows reads few
// rows past its end; each next one is twice the size, up to maxWalkChunk.
const (
	firstWalkChunk = 8
	maxWalkChunk   = 64
)

// walk calls fn with the entries of tree in its order from the first at or after from (nil:
// the first of the tree), or in reverse order from the last at or before from (nil: the last
// of the tree) if desc, until fn returns false or the tree ends. row gives an entry's row.
// Each chunk of entries is read from the tree and its rows prefetched before fn sees the
// first of them: the rows of up to a chunk of entries past the one fn stops at are read for
// nothing, but fn sees each entry once, in order, and none after it returned false.
func walk[T any](tree *btree.BTreeG[T], from *T, desc bool, row func(T) *resource, fn func(T) bool) {
	it := tree.Iter()
	defer it.Release()
	var ok bool
	switch {
	case from == nil && !desc:
		ok = it.First()
	case from == nil:
		ok = it.Last()
	case !desc:
		ok = it.Seek(*from)
	default:
		// Seek finds the first entry at or after from: step back unless it is from itself.
		if ok = it.Seek(*from); !ok {
			ok = it.Last()
		} else if tree.Less(*from, it.Item()) {
			ok = it.Prev()
		}
	}
	var entries [maxWalkChunk]T
	var rows [maxWalkChunk]*resource
	size := firstWalkChunk
	for ok {
		n := 0
		for ; n < size && ok; n++ {
			entries[n] = it.Item()
			rows[n] = row(entries[n])
			if desc {
				ok = it.Prev()
			} else {
				ok = it.Next()
			}
		}
		prefetch(rows[:n])
		for _, e := range entries[:n] {
			if !fn(e) {
				return
			}
		}
		size = min(2*size, maxWalkChunk)
	}
}

// prefetch reads every 64-byte line of each row, the loads of one row independent of those of
// the others, and returns a sum of what it read, so that the loads are not optimized away (it
// is not inlined: its caller may drop the sum).
//
//go:noinline
func prefetch(rows []*resource) (sum uint64) {
	for _, r := range rows {
		sum += uint64(r.size)
	}
	for _, r := range rows {
		data := r.data()
		for i := 0; i < len(data); i += 64 {
			sum += uint64(data[i])
		}
		if len(data) > 0 {
			sum += uint64(data[len(data)-1]) // the last line, which the steps may miss
		}
	}
	return sum
}

// self is the row of an index over rows: the entry itself.
func self(r *resource) *resource { return r }
