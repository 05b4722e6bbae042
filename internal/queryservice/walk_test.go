package queryservice

import (
	"slices"
	"testing"

	"github.com/tidwall/btree"
)

// TestWalkVisitsWhatTheTreeHolds: walk gives the entries the tree's own Scan, Reverse, Ascend and
// Descend give, in their order, from every start (an entry, a probe between two entries, before
// the first, after the last, none) in both directions, in a tree of several levels; and it stops
// at the entry its function refuses, after any number of chunks.
func TestWalkVisitsWhatTheTreeHolds(t *testing.T) {
	const n = 3000 // several levels at the indexes' degree
	tree := btree.NewBTreeGOptions(func(a, b *resource) bool { return a.version < b.version }, btreeOptions)
	for i := range n {
		tree.Set(newRow("", uint64(2*i+2))) // even versions 2 to 2n
	}
	versions := func(visit func(func(*resource) bool)) []uint64 {
		var out []uint64
		visit(func(r *resource) bool { out = append(out, r.version); return true })
		return out
	}
	starts := []uint64{1, 2, 3, 500, 501, 2 * n, 2*n + 1, 0}
	for _, start := range starts {
		for _, desc := range []bool{false, true} {
			var from *resource
			var want []uint64
			switch {
			case start == 0 && !desc:
				want = versions(tree.Scan)
			case start == 0:
				want = versions(tree.Reverse)
			case !desc:
				from = newRow("", start)
				want = versions(func(fn func(*resource) bool) { tree.Ascend(from, fn) })
			default:
				from = newRow("", start)
				want = versions(func(fn func(*resource) bool) { tree.Descend(from, fn) })
			}
			var fromPtr **resource
			if from != nil {
				fromPtr = &from
			}
			got := versions(func(fn func(*resource) bool) { walk(tree, fromPtr, desc, self, fn) })
			if !slices.Equal(got, want) {
				t.Fatalf("from %d, desc %t: %d entries, want %d (first %v, want %v)", start, desc, len(got), len(want), got[:min(3, len(got))], want[:min(3, len(want))])
			}
			for _, stop := range []int{0, 7, 8, 23, 100, len(want) - 1} {
				if stop < 0 || stop >= len(want) {
					continue
				}
				var seen []uint64
				walk(tree, fromPtr, desc, self, func(r *resource) bool {
					seen = append(seen, r.version)
					return len(seen) <= stop
				})
				if !slices.Equal(seen, want[:stop+1]) {
					t.Fatalf("from %d, desc %t, stopping after %d: saw %d entries", start, desc, stop+1, len(seen))
				}
			}
		}
	}
}
