package queryservice

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
)

// TestLoadOrdered: tables loaded from a snapshot's stored orders (appendOrders, loadOrdered) hold
// every index exactly as tables built by sorting (load), and so do tables loaded from orders that
// are truncated, name a row twice, point into no entry of their row, or are out of order.
func TestLoadOrdered(t *testing.T) {
	x := &textModel{t: t, rng: rand.New(rand.NewPCG(3, 9)), m: NewModel(), ts: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	x.batch(300, 900)
	b := x.m.Begin()
	policies := []cr.PolicyID{cr.PolicyID(uuid.New()), cr.PolicyID(uuid.New()), cr.PolicyID(uuid.New())}
	for i, id := range x.ids {
		for _, p := range policies[:i%4] {
			x.apply(b, id, func(m cr.EventMeta) cr.Event { return cr.PolicyAdded{EventMeta: m, PolicyID: p} })
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	v := x.m.View()
	var rows []*resource
	number := map[*resource]uint32{}
	v.each(func(r *resource) bool { number[r] = uint32(len(rows)); rows = append(rows, r); return true })
	orders := v.t.appendOrders(nil, number)
	want := newTables()
	want.load(rows)

	swapped := slices.Clone(orders)
	copy(swapped[0:4], orders[4:8]) // the concept index's first two rows swapped
	copy(swapped[4:8], orders[0:4])
	twice := slices.Clone(orders)
	copy(twice[4:8], orders[0:4]) // the first row twice, the second never
	wrongAt := slices.Clone(orders)
	end := len(wrongAt) - 4 // the last metadata entry's position
	binary.LittleEndian.PutUint32(wrongAt[end:], binary.LittleEndian.Uint32(wrongAt[end:])+1)
	for name, o := range map[string][]byte{
		"as stored": orders, "truncated": orders[:len(orders)-8], "a row twice": twice,
		"another position": wrongAt, "out of order": swapped, "with bytes after": append(slices.Clone(orders), 0, 0, 0, 0),
	} {
		got := newTables()
		got.loadOrdered(rows, o)
		for i, tree := range got.rowTrees() {
			if g, w := tree.Items(), want.rowTrees()[i].Items(); !slices.Equal(g, w) {
				t.Fatalf("%s: index %s differs: %d rows, want %d", name, rowFields()[i].name, len(g), len(w))
			}
		}
		if g, w := got.byID.Items(), want.byID.Items(); !slices.Equal(g, w) {
			t.Fatalf("%s: byID differs", name)
		}
		if g, w := got.policy.Items(), want.policy.Items(); !slices.Equal(g, w) || len(w) != 300/4*(0+1+2+3) {
			t.Fatalf("%s: policy entries differ: %d, want %d", name, len(g), len(w))
		}
		if g, w := got.meta.Items(), want.meta.Items(); !slices.Equal(g, w) || len(w) == 0 {
			t.Fatalf("%s: metadata entries differ: %d, want %d", name, len(g), len(w))
		}
	}
}

// TestSortsAgreeWithCompareRows: the bulk build's sortByKey and list's sortRows put rows in the
// order compareRows gives (the order of the index), for every index over rows, also when most
// rows share a value (the keys' common prefix is long) and a value is a prefix of another. An
// index loaded out of order would still hold every row, only slower, so this is checked here.
func TestSortsAgreeWithCompareRows(t *testing.T) {
	x := &textModel{t: t, rng: rand.New(rand.NewPCG(5, 8)), m: NewModel(), ts: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	x.batch(400, 1200)
	b := x.m.Begin()
	policyIDs := []cr.PolicyID{cr.PolicyID(uuid.New()), cr.PolicyID(uuid.New()), cr.PolicyID(uuid.New())}
	for i, id := range x.ids[:60] {
		tag := "tag-shared-prefix-"[:6+i%13] // values that are prefixes of one another
		x.apply(b, id, func(m cr.EventMeta) cr.Event { return cr.AssetTagAssigned{EventMeta: m, AssetTag: tag} })
		for _, p := range policyIDs[:i%4] {
			x.apply(b, id, func(m cr.EventMeta) cr.Event { return cr.PolicyAdded{EventMeta: m, PolicyID: p} })
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	var rows []*resource
	x.m.View().each(func(r *resource) bool { rows = append(rows, r); return true })
	x.rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	for _, f := range rowFields() {
		want := slices.Clone(rows)
		slices.SortFunc(want, f.compareRows)
		if got := sortByKey(rows, f); !slices.Equal(got, want) {
			t.Fatalf("sortByKey by %s differs from compareRows' order", f.name)
		}
		for _, desc := range []bool{false, true} {
			got := slices.Clone(rows)
			f.sortRows(got, desc)
			w := slices.Clone(want)
			if desc {
				slices.Reverse(w)
			}
			if !slices.Equal(got, w) {
				t.Fatalf("sortRows by %s (desc %t) differs from compareRows' order", f.name, desc)
			}
			// Pages of neighbours in the order, whose values share long prefixes.
			for start := 0; start+20 <= len(want); start += 7 {
				page := slices.Clone(w[start : start+20])
				got := slices.Clone(page)
				x.rng.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
				f.sortRows(got, desc)
				if !slices.Equal(got, page) {
					t.Fatalf("sortRows by %s (desc %t) of rows %d to %d differs from compareRows' order", f.name, desc, start, start+20)
				}
			}
		}
	}
	// The bulk build's metadata and policy entries.
	var meta []metaEntry
	var policies []policyEntry
	for _, r := range rows {
		r.metadata(func(k, v string, at uint32) bool { meta = append(meta, metaEntry{r, at, metaHash(k, v)}); return true })
		r.policies(func(_ [16]byte, at uint32) { policies = append(policies, policyEntry{r, at}) })
	}
	gotMeta, gotPolicies := sortByKeys(meta, appendMetaKey), sortByKeys(policies, appendPolicyKey)
	slices.SortFunc(meta, compareMeta)
	slices.SortFunc(policies, comparePolicy)
	if len(meta) == 0 || !slices.Equal(gotMeta, meta) {
		t.Fatalf("metadata entries (%d) not in compareMeta's order", len(meta))
	}
	if len(policies) == 0 || !slices.Equal(gotPolicies, policies) {
		t.Fatalf("policy entries (%d) not in comparePolicy's order", len(policies))
	}
	if got := sortByKey(nil, sortFields[0]); len(got) != 0 {
		t.Fatalf("sortByKey(nil) = %d rows", len(got))
	}
}

// fleetState is the state of the benchmarks' resource i (benchFleet) and its binary encoding.
func fleetState(t *testing.T, i int) (cr.State, []byte) {
	t.Helper()
	var st cr.State
	for _, e := range newBenchFleet().history(t, i) {
		st = cr.Apply(st, e)
	}
	data, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return st, data
}

// TestRowOfRefusesCorruptStates: a row is never read from bytes that are not a state's
// encoding: each cut of a state's encoding, a wrong format byte and an unknown status are
// errors, not rows.
func TestRowOfRefusesCorruptStates(t *testing.T) {
	st, data := fleetState(t, 7)
	r, err := rowOf(string(data), 9)
	if err != nil {
		t.Fatal(err)
	}
	back, err := r.state()
	if err != nil || !back.Equal(st) {
		t.Fatalf("row's state differs: %v", err)
	}
	for n := range len(data) {
		if _, err := rowOf(string(data[:n]), 9); err == nil {
			t.Fatalf("the first %d of %d bytes read as a row", n, len(data))
		}
	}
	if _, err := rowOf(string(append([]byte{2}, data[1:]...)), 9); err == nil {
		t.Fatal("format 2 read as a row")
	}
	if _, err := rowOf(string(append(slices.Clone(data), 0)), 9); err == nil {
		t.Fatal("a byte after the state read as a row")
	}
	bad := slices.Clone(data)
	bad[bytes.Index(bad, []byte("decommissioned"))] = 'x'
	if _, err := rowOf(string(bad), 9); err == nil {
		t.Fatal("an unknown status read as a row")
	}
}

// TestRowHoldsItsOwnCopy: a row's data is a copy of the bytes it was made from, behind its
// header in the same allocation, and stays whole through collections; a pivot of no bytes has
// empty data.
func TestRowHoldsItsOwnCopy(t *testing.T) {
	_, data := fleetState(t, 3)
	want := string(data)
	r, err := rowOf(data, 4)
	if err != nil {
		t.Fatal(err)
	}
	clear(data)
	runtime.GC()
	runtime.GC()
	if r.data() != want || r.version != 4 || int(r.size) != len(want) {
		t.Fatalf("row holds %d bytes at version %d, want the %d bytes it was made from at 4", r.size, r.version, len(want))
	}
	if got := uintptr(unsafe.Pointer(unsafe.StringData(r.data()))) - uintptr(unsafe.Pointer(r)); got != rowHeader {
		t.Fatalf("data starts %d bytes after the header's start, want %d", got, rowHeader)
	}
	if p := pivot(nil); p.data() != "" || !isPivot(p) {
		t.Fatalf("pivot of no bytes: data %q, version %d", p.data(), p.version)
	}
}

// TestTextIndexSnapshot: a text index loaded from a snapshot's bytes gives each q the rows a scan
// of the view gives; a snapshot of a view older than the index's last removal holds no index;
// bytes cut short, a slot out of range or a repeated id are refused and leave the index empty.
func TestTextIndexSnapshot(t *testing.T) {
	x := &textModel{t: t, rng: rand.New(rand.NewPCG(5, 5)), m: NewModel(), ts: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	x.batch(400, 0)
	x.batch(20, 300)
	v := x.m.View()
	data, ok := v.text.appendSnapshot(nil, v.textGen)
	if !ok {
		t.Fatal("no snapshot of the current view's index")
	}
	loaded := newTextIndex()
	if !loaded.loadSnapshot(data) {
		t.Fatal("the snapshot's index does not load")
	}
	w := View{t: v.t, text: loaded, trace: v.trace}
	for _, q := range []string{"h", "ha", "hab", "b0", "-0", "0.x", "aab", "abab", "É", "xyz"} {
		want := sortedIDs(scanQ(t, w, q))
		got, _ := indexQ(t, w, q)
		if !slices.Equal(sortedIDs(got), want) {
			t.Fatalf("q %q: the loaded index finds %d rows, a scan %d", q, len(got), len(want))
		}
	}
	x.batch(0, 300) // changes texts: the index loses trigrams
	if _, ok := v.text.appendSnapshot(nil, v.textGen); ok {
		t.Fatal("a snapshot of a view older than a removal holds an index")
	}
	dupID := slices.Clone(data)
	_, k := binary.Uvarint(dupID)
	copy(dupID[k+16:k+32], dupID[k:k+16]) // the second slot's id is the first's
	for name, bad := range map[string][]byte{"cut": data[:len(data)-3], "empty": {}, "a repeated id": dupID} {
		idx := newTextIndex()
		if idx.loadSnapshot(bad) || len(idx.ids) != 0 || len(idx.postings) != 0 {
			t.Errorf("%s: loaded, or left %d ids and %d postings", name, len(idx.ids), len(idx.postings))
		}
	}
}

// collidingPair returns two strings of the form prefix+number whose hash16 is the same.
func collidingPair(t *testing.T, prefix string) (string, string) {
	seen := map[uint16]string{}
	for i := range 1 << 20 {
		s := prefix + strconv.Itoa(i)
		if other, ok := seen[hash16(s)]; ok {
			return other, s
		}
		seen[hash16(s)] = s
	}
	t.Fatal("no two strings with the same hash16")
	return "", ""
}

// TestMetadataLookupsWithHashCollisions: the metadata index orders entries by metaHash first, so
// that two keys of the same hash16 mix their entries, and two pairs of the same metaHash too. A
// lookup of a key or of a key and value still finds exactly the rows that hold it, in a model
// where every entry of four such pairs has one hash, among rows with other metadata.
func TestMetadataLookupsWithHashCollisions(t *testing.T) {
	k1, k2 := collidingPair(t, "k")
	va, vb := collidingPair(t, "v")
	if metaHash(k1, va) != metaHash(k2, vb) {
		t.Fatal("the pairs do not collide")
	}
	x := &textModel{t: t, rng: rand.New(rand.NewPCG(7, 7)), m: NewModel(), ts: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	x.batch(120, 0)
	b := x.m.Begin()
	for i, id := range x.ids {
		set := func(k, v string) {
			x.apply(b, id, func(m cr.EventMeta) cr.Event { return cr.MetadataUpdated{EventMeta: m, Key: k, Value: v} })
		}
		switch i % 5 {
		case 0:
			set(k1, va)
		case 1:
			set(k1, vb)
			set(k2, va)
		case 2:
			set(k2, vb)
		case 3:
			set(k1, "other")
		}
		if i%3 == 0 {
			set("rack", strconv.Itoa(i))
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	v := x.m.View()
	for _, f := range []string{k1, k2, k1 + "=" + va, k1 + "=" + vb, k2 + "=" + va, k2 + "=" + vb, k1 + "=other", k2 + "=other", "rack"} {
		key, value, withValue := strings.Cut(f, "=")
		var want []string
		v.each(func(r *resource) bool {
			if got, ok := r.metadataValue(key); ok && (!withValue || got == value) {
				want = append(want, r.id().String())
			}
			return true
		})
		filter, err := compileFilter(api.Filter{Metadata: []string{f}})
		if err != nil {
			t.Fatal(err)
		}
		page, err := list(v, &listPlan{filter: filter, order: sortFields[0], limit: api.MaxListLimit})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range page.Resources {
			got = append(got, r.ID)
		}
		slices.Sort(want)
		slices.Sort(got)
		if len(want) == 0 && !strings.HasSuffix(f, "=other") || !slices.Equal(got, want) || page.Total != len(want) {
			t.Fatalf("metadata %q: %d rows (total %d), want %d", f, len(got), page.Total, len(want))
		}
	}
}
