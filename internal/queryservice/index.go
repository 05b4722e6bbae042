package queryservice

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/tidwall/btree"
)

// Index names that are not sort fields (the sort fields' indexes are named as api.OrderFields).
const (
	indexPolicy         = "policy_id"
	indexAccountConcept = "account_concept_id"
	indexMetadataKey    = "metadata_key"
	indexMetadataValue  = "metadata_kv"
	// indexText is the text index of q, kept beside the tables (textIndex).
	indexText = "text"
)

// sep ends a variable-length value in an index key, so that "a" sorts before "a-b" and a
// lookup of "a" does not find "ab". A value containing it at most adds candidates, which the
// filter's predicate then refuses.
const sep = 0x00

// stringKey is s followed by sep.
func stringKey(s string) []byte { return append([]byte(s), sep) }

// lowerHostname is the case-insensitive form of a host name filter (stored names are canonical,
// lower-case, already).
func lowerHostname(s string) string { return strings.ToLower(strings.TrimSuffix(s, ".")) }

// btreeOptions: the tables' trees are never locked. The writer mutates its own trees only;
// readers read published copies, which nobody mutates (see tables).
var btreeOptions = btree.Options{Degree: 64, NoLocks: true}

// tables is the model at one sequence: the rows by id, one ordered index per sort field and
// per filter field. Every index is a copy-on-write B-tree (github.com/tidwall/btree) of row
// pointers ordered by (the field's value, id): a total order, which is what cursor paging
// relies on. The writer owns one tables and changes it in place; each commit publishes a copy
// (Copy is O(1): the trees then share their nodes, and the writer's next change to a shared
// node copies it first), so a published tables never changes and readers need no lock.
type tables struct {
	seq     uint64
	byID    *btree.BTreeG[*resource]
	orders  []*btree.BTreeG[*resource] // one per sortFields, at the same position
	concept *btree.BTreeG[*resource]
	policy  *btree.BTreeG[policyEntry]
	meta    *btree.BTreeG[metaEntry]
}

// policyEntry is one policy of a row: where its id is in the row's encoding. A probe (a pivot
// row) holds the policy id as its data, at 0.
type policyEntry struct {
	r  *resource
	at uint32
}

func (e policyEntry) policy() [16]byte { return e.r.idAt(e.at) }

func (e policyEntry) row() *resource { return e.r }

// policyProbe is the first entry of policy p.
func policyProbe(p [16]byte) policyEntry { return policyEntry{r: pivot(p[:])} }

// metaEntry is one metadata entry of a row: where it is in the row's encoding, and metaHash of
// its key and value. The index orders entries by the hash first: most comparisons, and all but
// the last few of a lookup's descent of the index, are of two numbers, not of two rows' bytes
// (each row another cache miss in a large model). A probe (a pivot row) holds a key and a value
// encoded as in a state, at 0.
type metaEntry struct {
	r    *resource
	at   uint32
	hash uint32
}

// newMetaEntry is r's metadata entry at position at.
func newMetaEntry(r *resource, at uint32) metaEntry {
	k, v := r.metadataAt(at)
	return metaEntry{r, at, metaHash(k, v)}
}

func (e metaEntry) entry() (key, value string) { return e.r.metadataAt(e.at) }

func (e metaEntry) row() *resource { return e.r }

// metaHash is 16 bits of a hash of key, then 16 of value: the entries of one key are the
// entries of one upper half (with those of any key of the same upper half), and those of one
// key and value the entries of one hash (with those of any other pair of the same).
func metaHash(key, value string) uint32 { return uint32(hash16(key))<<16 | uint32(hash16(value)) }

// hash16 is FNV-1a of s, its halves xored.
func hash16(s string) uint16 {
	h := uint32(2166136261)
	for i := range len(s) {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return uint16(h>>16 ^ h)
}

// metaProbe is the first entry of key and value: the pair's entries follow it, before any
// other entry of its hash (the others of its hash are other pairs').
func metaProbe(key, value string) metaEntry {
	b := binary.AppendUvarint(nil, uint64(len(key)))
	b = append(b, key...)
	b = binary.AppendUvarint(b, uint64(len(value)))
	return metaEntry{r: pivot(append(b, value...)), hash: metaHash(key, value)}
}

// keyProbe is the first entry of the upper half of key's hash (metaHash): every entry of key
// comes after it, mixed with those of any other key of the same upper half.
func keyProbe(key string) metaEntry {
	e := metaProbe(key, "")
	e.hash = uint32(hash16(key)) << 16
	return e
}

// comparePolicy orders policy entries by policy, then the row's id (a probe first).
func comparePolicy(a, b policyEntry) int {
	x, y := a.policy(), b.policy()
	if c := bytes.Compare(x[:], y[:]); c != 0 {
		return c
	}
	return compareID(a.r, b.r)
}

// appendPolicyKey appends a policy entry's key: the policy and the row's id, which compare as
// bytes in comparePolicy's order.
func appendPolicyKey(b []byte, e policyEntry) []byte {
	p := e.policy()
	return append(append(b, p[:]...), e.r.data()[1:hostnameAt]...)
}

// appendMetaKey appends a metadata entry's key: the hash (big-endian), the key, sep, the
// value, sep and the row's id, which compare as bytes in compareMeta's order (a value holding
// sep may come out of it).
func appendMetaKey(b []byte, e metaEntry) []byte {
	k, v := e.entry()
	b = binary.BigEndian.AppendUint32(b, e.hash)
	b = append(append(b, k...), sep)
	b = append(append(b, v...), sep)
	return append(b, e.r.data()[1:hostnameAt]...)
}

// compareMeta orders metadata entries by hash, key, value, then the row's id (a probe first).
func compareMeta(a, b metaEntry) int {
	if c := cmp.Compare(a.hash, b.hash); c != 0 {
		return c
	}
	ak, av := a.entry()
	bk, bv := b.entry()
	if c := strings.Compare(ak, bk); c != 0 {
		return c
	}
	if c := strings.Compare(av, bv); c != 0 {
		return c
	}
	return compareID(a.r, b.r)
}

func newTables() *tables {
	t := &tables{
		byID:    btree.NewBTreeGOptions(func(a, b *resource) bool { return compareID(a, b) < 0 }, btreeOptions),
		concept: btree.NewBTreeGOptions(conceptField.less, btreeOptions),
		policy:  btree.NewBTreeGOptions(func(a, b policyEntry) bool { return comparePolicy(a, b) < 0 }, btreeOptions),
		meta:    btree.NewBTreeGOptions(func(a, b metaEntry) bool { return compareMeta(a, b) < 0 }, btreeOptions),
	}
	for _, f := range sortFields {
		t.orders = append(t.orders, btree.NewBTreeGOptions(f.less, btreeOptions))
	}
	return t
}

// copy returns a copy that shares every node with t; t stays the writer's.
func (t *tables) copy() *tables {
	c := &tables{seq: t.seq, byID: t.byID.Copy(), concept: t.concept.Copy(), policy: t.policy.Copy(), meta: t.meta.Copy()}
	c.orders = make([]*btree.BTreeG[*resource], len(t.orders))
	for i, o := range t.orders {
		c.orders[i] = o.Copy()
	}
	return c
}

// get returns the row of id.
func (t *tables) get(id uuid.UUID) (*resource, bool) {
	return t.byID.Get(idProbe(id))
}

// idProbe is a probe of byID: a row whose encoding holds only the format byte and id.
func idProbe(id uuid.UUID) *resource {
	return newRow(append([]byte{stateFormat}, id[:]...), 1)
}

// compareID orders rows by id: the order of byID. A pivot comes before every row.
func compareID(a, b *resource) int {
	switch {
	case isPivot(a) || isPivot(b):
		return cmp.Compare(a.version, b.version)
	}
	return strings.Compare(a.data()[1:hostnameAt], b.data()[1:hostnameAt])
}

// put replaces old (nil: none) by r in every index.
func (t *tables) put(old, r *resource) {
	if old == nil {
		t.byID.Set(r)
		t.concept.Set(r)
		for _, o := range t.orders {
			o.Set(r)
		}
		r.policies(func(_ [16]byte, at uint32) { t.policy.Set(policyEntry{r, at}) })
		r.metadata(func(k, v string, at uint32) bool { t.meta.Set(metaEntry{r, at, metaHash(k, v)}); return true })
		return
	}
	t.byID.Set(r) // same id: replaces old
	replace := func(tree *btree.BTreeG[*resource], f sortField) {
		if f.cmp(old, r) != 0 {
			tree.Delete(old)
		}
		tree.Set(r)
	}
	replace(t.concept, conceptField)
	for i, f := range sortFields {
		replace(t.orders[i], f)
	}
	// An entry of old that r keeps (same policy, same key and value) is replaced by r's, as it
	// compares equal; the others are deleted.
	old.policies(func(p [16]byte, at uint32) {
		if !r.hasPolicy(p) {
			t.policy.Delete(policyEntry{old, at})
		}
	})
	r.policies(func(_ [16]byte, at uint32) { t.policy.Set(policyEntry{r, at}) })
	old.metadata(func(k, v string, at uint32) bool {
		if nv, ok := r.metadataValue(k); !ok || nv != v {
			t.meta.Delete(metaEntry{old, at, metaHash(k, v)})
		}
		return true
	})
	r.metadata(func(k, v string, at uint32) bool { t.meta.Set(metaEntry{r, at, metaHash(k, v)}); return true })
}

// load fills the empty t with rows in bulk: each index sorted once and loaded in order.
func (t *tables) load(rows []*resource) {
	sorted := slices.Clone(rows)
	slices.SortFunc(sorted, compareID)
	loadAll(t.byID, sorted)
	t.loadIndexes(rows)
}

// loadIndexes fills t's empty indexes other than byID with rows in bulk, each sorted once and
// loaded in order, the indexes in parallel (they share nothing).
func (t *tables) loadIndexes(rows []*resource) {
	tasks := []func(){
		func() {
			var policies []policyEntry
			for _, r := range rows {
				r.policies(func(_ [16]byte, at uint32) { policies = append(policies, policyEntry{r, at}) })
			}
			loadAll(t.policy, sortByKeys(policies, appendPolicyKey))
		},
		func() {
			var meta []metaEntry
			for _, r := range rows {
				r.metadata(func(k, v string, at uint32) bool { meta = append(meta, metaEntry{r, at, metaHash(k, v)}); return true })
			}
			loadAll(t.meta, sortByKeys(meta, appendMetaKey))
		},
	}
	fields := rowFields()
	for i, tree := range t.rowTrees() {
		tasks = append(tasks, func() { loadAll(tree, sortByKey(rows, fields[i])) })
	}
	parallel(tasks)
}

// sortByKey returns rows in the order of f's index: sorted by their keys (rowKey), which
// compare as bytes in the order compareRows gives (sortByKeys). (Were a key out of that order,
// Load would still insert its row where it belongs.)
func sortByKey(rows []*resource, f sortField) []*resource {
	return sortByKeys(rows, func(b []byte, r *resource) []byte {
		return append(f.appendKey(b, r), r.data()[1:hostnameAt]...)
	})
}

// sortByKeys returns items sorted by the keys appendKey appends, as bytes. The keys are made
// once per item into one buffer, and each key's eight bytes after the prefix all keys share
// are kept beside it as a number, which settles most comparisons without reading the buffer.
func sortByKeys[T any](items []T, appendKey func([]byte, T) []byte) []T {
	type keyed struct {
		head       uint64 // the key's 8 bytes from common on, big-endian, zero-padded
		start, end int    // the key in buf
		item       T
	}
	if len(items) == 0 {
		return nil
	}
	keys := make([]keyed, len(items))
	// Room for keys somewhat longer than the first, so that buf is seldom copied as it grows.
	buf := appendKey(nil, items[0])
	buf = make([]byte, 0, len(items)*(len(buf)+8))
	for i, it := range items {
		start := len(buf)
		buf = appendKey(buf, it)
		keys[i] = keyed{start: start, end: len(buf), item: it}
	}
	first := buf[keys[0].start:keys[0].end]
	common := len(first)
	for _, k := range keys[1:] {
		key := buf[k.start:k.end]
		n := min(common, len(key))
		c := 0
		for c < n && key[c] == first[c] {
			c++
		}
		common = c
	}
	for i := range keys {
		var head [8]byte
		copy(head[:], buf[keys[i].start+common:keys[i].end])
		keys[i].head = binary.BigEndian.Uint64(head[:])
	}
	slices.SortFunc(keys, func(a, b keyed) int {
		if a.head != b.head {
			return cmp.Compare(a.head, b.head)
		}
		return bytes.Compare(buf[a.start+common:a.end], buf[b.start+common:b.end])
	})
	out := make([]T, len(items))
	for i, k := range keys {
		out[i] = k.item
	}
	return out
}

// order returns the tree and field of an index over rows named as a sort field or
// indexAccountConcept.
func (t *tables) order(name string) (*btree.BTreeG[*resource], sortField, bool) {
	if name == indexAccountConcept {
		return t.concept, conceptField, true
	}
	for i, f := range sortFields {
		if f.name == name {
			return t.orders[i], f, true
		}
	}
	return nil, sortField{}, false
}

// pivot is a probe of an index over rows: it compares by its key bytes (a row's key, or a
// prefix of keys) against each row's key, so that an index can be entered at any key. A probe
// is told from a row by its version, 0 (a row's is the stream sequence of its last event, at
// least 1).
func pivot(key []byte) *resource { return newRow(key, 0) }

func isPivot(r *resource) bool { return r.version == 0 }

// compare orders rows by the field's value, then id; the same order as their keys (rowKey)
// as bytes, which a pivot is compared by.
func (f sortField) compare(a, b *resource) int {
	if isPivot(a) || isPivot(b) {
		return bytes.Compare(f.keyOf(a), f.keyOf(b))
	}
	return f.compareRows(a, b)
}

// compareRows is compare for two rows (no pivot).
func (f sortField) compareRows(a, b *resource) int {
	if c := f.cmp(a, b); c != 0 {
		return c
	}
	return compareID(a, b)
}

func (f sortField) less(a, b *resource) bool { return f.compare(a, b) < 0 }

// sortRows sorts rows in compareRows' order, or its reverse if desc. The value of a field over
// a string is read once per row, not once per comparison; a page's worth of rows is sorted by
// numbers (sortFew).
func (f sortField) sortRows(rows []*resource, desc bool) {
	sign := 1
	if desc {
		sign = -1
	}
	if f.text == nil {
		slices.SortFunc(rows, func(a, b *resource) int { return sign * f.compareRows(a, b) })
		return
	}
	vs := make([]valued, len(rows))
	for i, r := range rows {
		vs[i] = valued{f.text(r), r}
	}
	if len(vs) <= maxSortFew {
		sortFew(vs)
		if desc {
			slices.Reverse(vs)
		}
	} else {
		slices.SortFunc(vs, func(a, b valued) int { return sign * a.compare(b) })
	}
	for i, v := range vs {
		rows[i] = v.r
	}
}

// valued is a row with its value of a field over a string.
type valued struct {
	v string
	r *resource
}

// compare orders by value, then id: compareRows' order.
func (a valued) compare(b valued) int {
	if c := strings.Compare(a.v, b.v); c != 0 {
		return c
	}
	return compareID(a.r, b.r)
}

// maxSortFew is the most values sortFew sorts: their positions fit in a byte.
const maxSortFew = 256

// sortFew sorts vs (at most maxSortFew) in valued.compare's order. Each value's seven bytes
// after the prefix all of them share (the values of a page often share most of theirs), with
// zeros past its end, make a number with the value's position in the low byte; sorting the
// numbers orders every two values whose seven bytes differ (the zeros put a value before the
// longer ones it is a prefix of), and each run of equal bytes is then sorted by compare.
func sortFew(vs []valued) {
	if len(vs) < 2 {
		return
	}
	shared := len(vs[0].v)
	for _, x := range vs[1:] {
		shared = commonPrefix(vs[0].v[:shared], x.v)
	}
	var buf [maxSortFew]uint64
	keys := buf[:len(vs)]
	for i, x := range vs {
		var word [8]byte
		copy(word[:7], x.v[shared:])
		keys[i] = binary.BigEndian.Uint64(word[:]) | uint64(i)
	}
	slices.Sort(keys)
	sorted := make([]valued, len(vs))
	for i, k := range keys {
		sorted[i] = vs[byte(k)]
	}
	for start := 0; start < len(keys); {
		end := start + 1
		for end < len(keys) && keys[end]>>8 == keys[start]>>8 {
			end++
		}
		if end-start > 1 {
			slices.SortFunc(sorted[start:end], valued.compare)
		}
		start = end
	}
	copy(vs, sorted)
}

// commonPrefix is the length of the longest prefix of a that b starts with.
func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

func (f sortField) keyOf(r *resource) []byte {
	if isPivot(r) {
		return []byte(r.data())
	}
	return rowKey(f, r)
}

// conceptField orders rows by account concept.
var conceptField = sortField{
	name:      indexAccountConcept,
	appendKey: func(b []byte, r *resource) []byte { id := r.accountConceptID(); return append(b, id[:]...) },
	cmp: func(a, b *resource) int {
		x, y := a.accountConceptID(), b.accountConceptID()
		return bytes.Compare(x[:], y[:])
	},
}

// rowTrees are t's indexes over rows other than byID, in the order a snapshot stores them.
func (t *tables) rowTrees() []*btree.BTreeG[*resource] {
	return append([]*btree.BTreeG[*resource]{t.concept}, t.orders...)
}

// rowFields are the fields of rowTrees, at the same positions.
func rowFields() []sortField { return append([]sortField{conceptField}, sortFields...) }

// appendOrders appends, for a snapshot, each index's entries in its order: the row numbers
// (number, the rows' positions in id order) of each index over rows (rowTrees), then the
// policy and the metadata entries, each as its count and (row number, position) pairs; all
// little-endian uint32.
func (t *tables) appendOrders(b []byte, number map[*resource]uint32) []byte {
	for _, tree := range t.rowTrees() {
		tree.Scan(func(r *resource) bool {
			b = binary.LittleEndian.AppendUint32(b, number[r])
			return true
		})
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(t.policy.Len()))
	t.policy.Scan(func(e policyEntry) bool {
		b = binary.LittleEndian.AppendUint32(b, number[e.r])
		b = binary.LittleEndian.AppendUint32(b, e.at)
		return true
	})
	b = binary.LittleEndian.AppendUint32(b, uint32(t.meta.Len()))
	t.meta.Scan(func(e metaEntry) bool {
		b = binary.LittleEndian.AppendUint32(b, number[e.r])
		b = binary.LittleEndian.AppendUint32(b, e.at)
		return true
	})
	return b
}

// loadOrdered fills the empty t with rows (in id order) and each index in the order a
// snapshot stored (appendOrders). Orders that do not check out (another version's, or corrupt)
// are ignored: load sorts then. The indexes are loaded in parallel: they share nothing.
func (t *tables) loadOrdered(rows []*resource, orders []byte) {
	trees, policies, meta, ok := readOrders(rows, orders)
	if !ok {
		t.load(rows)
		return
	}
	tasks := []func(){
		func() { loadAll(t.byID, rows) },
		func() { loadAll(t.policy, policies) },
		func() { loadAll(t.meta, meta) },
	}
	for i, tree := range t.rowTrees() {
		tasks = append(tasks, func() { loadAll(tree, trees[i]) })
	}
	parallel(tasks)
}

// loadAll loads items into the empty tree. Items out of order are still inserted where they
// belong (Load falls back to Set), only more slowly.
func loadAll[T any](tree *btree.BTreeG[T], items []T) {
	for _, it := range items {
		tree.Load(it)
	}
}

// parallel runs the tasks on GOMAXPROCS goroutines and returns when all are done.
func parallel(tasks []func()) {
	next := make(chan func())
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(tasks)) {
		wg.Go(func() {
			for task := range next {
				task()
			}
		})
	}
	for _, task := range tasks {
		next <- task
	}
	close(next)
	wg.Wait()
}

// readOrders reads what appendOrders wrote, checking that each index over rows holds every row
// once and that the policy and metadata entries are the rows' own, each once (in order: an
// entry equal to the one before is a repeat). An index's order is not checked: out of order,
// Load inserts in place all the same.
func readOrders(rows []*resource, b []byte) (trees [][]*resource, policies []policyEntry, meta []metaEntry, ok bool) {
	n := len(rows)
	fields := rowFields()
	if len(b) < 4*n*len(fields) {
		return nil, nil, nil, false
	}
	seen := make([]bool, n)
	u32 := func() uint32 { v := binary.LittleEndian.Uint32(b); b = b[4:]; return v }
	for range fields {
		clear(seen)
		order := make([]*resource, n)
		for i := range order {
			k := u32()
			if int(k) >= n || seen[k] {
				return nil, nil, nil, false
			}
			seen[k] = true
			order[i] = rows[k]
		}
		trees = append(trees, order)
	}
	// entries reads one entry index: its count, then (row, position) pairs, each position one
	// of the row's own entries (from each), in the order of compare.
	entries := func(each func(*resource, func(uint32)), add func(r *resource, at uint32) bool) bool {
		if len(b) < 4 {
			return false
		}
		count := int(u32())
		if count > len(b)/8 {
			return false
		}
		for range count {
			k, at := u32(), u32()
			if int(k) >= n {
				return false
			}
			own := false
			each(rows[k], func(p uint32) { own = own || p == at })
			if !own || !add(rows[k], at) {
				return false
			}
		}
		return true
	}
	if !entries(func(r *resource, fn func(uint32)) { r.policies(func(_ [16]byte, at uint32) { fn(at) }) },
		func(r *resource, at uint32) bool {
			e := policyEntry{r, at}
			policies = append(policies, e)
			return len(policies) == 1 || comparePolicy(policies[len(policies)-2], e) < 0
		}) {
		return nil, nil, nil, false
	}
	if !entries(func(r *resource, fn func(uint32)) {
		r.metadata(func(_, _ string, at uint32) bool { fn(at); return true })
	}, func(r *resource, at uint32) bool {
		e := newMetaEntry(r, at)
		meta = append(meta, e)
		return len(meta) == 1 || compareMeta(meta[len(meta)-2], e) < 0
	}) {
		return nil, nil, nil, false
	}
	return trees, policies, meta, len(b) == 0
}
