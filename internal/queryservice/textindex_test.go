package queryservice

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
)

// textModel writes random resources into a model, with texts from a small alphabet so that
// queries share trigrams with many rows, and changes them batch after batch.
type textModel struct {
	t   *testing.T
	rng *rand.Rand
	m   *Model
	ids []uuid.UUID
	seq uint64
	ts  time.Time
}

func (x *textModel) word(alphabet string, n int) string {
	var b strings.Builder
	for range n {
		r := []rune(alphabet)
		b.WriteRune(r[x.rng.IntN(len(r))])
	}
	return b.String()
}

func (x *textModel) apply(b *Batch, id uuid.UUID, e func(cr.EventMeta) cr.Event) {
	x.seq++
	x.ts = x.ts.Add(time.Second)
	c := uuid.New()
	if err := b.Apply(x.seq, e(cr.EventMeta{EventID: uuid.New(), AggregateID: id, CommandID: c, Timestamp: x.ts})); err != nil {
		x.t.Fatal(err)
	}
}

// batch registers `add` resources and changes the asset tag, model or a metadata value of
// `change` existing ones, in one commit.
func (x *textModel) batch(add, change int) {
	b := x.m.Begin()
	for range add {
		id := uuid.New()
		x.ids = append(x.ids, id)
		host, err := cr.ParseHostname("h" + x.word("ab-0", 2+x.rng.IntN(6)) + "0.x" + x.word("ab0", 3))
		if err != nil {
			x.t.Fatal(err)
		}
		x.apply(b, id, func(m cr.EventMeta) cr.Event {
			return cr.ResourceRegistered{EventMeta: m, Hostname: host, Type: cr.ResourceTypes()[0]}
		})
	}
	for range change {
		id := x.ids[x.rng.IntN(len(x.ids))]
		v := x.word("aAbB0-É", x.rng.IntN(7))
		switch x.rng.IntN(4) {
		case 0:
			x.apply(b, id, func(m cr.EventMeta) cr.Event { return cr.AssetTagAssigned{EventMeta: m, AssetTag: v} })
		case 1:
			x.apply(b, id, func(m cr.EventMeta) cr.Event { return cr.HardwareDetailsSet{EventMeta: m, Model: &v, SerialNumber: &v} })
		default:
			k := x.word("kl", 1)
			x.apply(b, id, func(m cr.EventMeta) cr.Event { return cr.MetadataUpdated{EventMeta: m, Key: k, Value: v} })
		}
	}
	if err := b.Commit(); err != nil {
		x.t.Fatal(err)
	}
}

// scanQ is q's meaning, written out over the wire's rows of every row in v: the ids of the rows
// one of whose host name, asset tag, serial number, model and metadata values contains q,
// ignoring case.
func scanQ(t *testing.T, v View, q string) []uuid.UUID {
	t.Helper()
	q = strings.ToLower(q)
	var out []uuid.UUID
	v.each(func(row *resource) bool {
		st, err := row.state()
		if err != nil {
			t.Fatal(err)
		}
		r := api.ResourceOf(st, row.version)
		texts := []string{r.Hostname, r.AssetTag, r.SerialNumber, r.Model}
		for _, v := range r.Metadata {
			texts = append(texts, v)
		}
		if slices.ContainsFunc(texts, func(s string) bool { return strings.Contains(strings.ToLower(s), q) }) {
			out = append(out, uuid.MustParse(r.ID))
		}
		return true
	})
	return out
}

// indexQ is what the filter finds for q in v, and whether the text index answered.
func indexQ(t *testing.T, v View, q string) (ids []uuid.UUID, indexed bool) {
	t.Helper()
	f, err := compileFilter(api.Filter{Q: q})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.each(v, func(r *resource) bool { ids = append(ids, r.id()); return true }); err != nil {
		t.Fatal(err)
	}
	_, indexed = v.text.candidates(f.q, v.textGen)
	return ids, f.lookup != nil && f.lookup.index == indexText && indexed
}

func sortedIDs(ids []uuid.UUID) []uuid.UUID {
	ids = slices.Clone(ids)
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	return ids
}

// TestTextIndexEqualsScan: for random models changed batch after batch and random queries (parts
// of the rows' texts in other case, and random words), q through the text index finds exactly the
// rows a scan finds; also on a view taken before a batch that took trigrams out of the index.
func TestTextIndexEqualsScan(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		x := &textModel{t: t, rng: rand.New(rand.NewPCG(seed, 16)), m: NewModel(), ts: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		indexed, nonEmpty := 0, 0
		check := func(v View, when string) {
			for range 60 {
				var q string
				if x.rng.IntN(2) == 0 {
					q = x.word("aAbB0-.xÉé", 1+x.rng.IntN(5))
				} else {
					r, _ := v.Resource(x.ids[x.rng.IntN(len(x.ids))])
					if r == nil {
						continue
					}
					text := r.text()
					from := x.rng.IntN(len(text))
					q = strings.ToUpper(text[from:min(len(text), from+1+x.rng.IntN(6))])
					q = strings.ReplaceAll(q, string(rune(sep)), "")
					if q == "" {
						continue
					}
				}
				want := sortedIDs(scanQ(t, v, q))
				got, usedIndex := indexQ(t, v, q)
				if !slices.Equal(sortedIDs(got), want) {
					t.Fatalf("seed %d, %s, q %q: the filter finds %d rows, a scan %d", seed, when, q, len(got), len(want))
				}
				if usedIndex {
					indexed++
					if len(want) > 0 {
						nonEmpty++
					}
				}
			}
		}
		x.batch(200, 0)
		for range 6 {
			old := x.m.View()
			x.batch(20, 80)
			check(x.m.View(), "current view")
			check(old, "view of the previous batch")
		}
		if indexed == 0 || nonEmpty == 0 {
			t.Fatalf("seed %d: the text index answered %d queries, %d of them with matches: the test checked nothing of it", seed, indexed, nonEmpty)
		}
	}
}

// TestQRefusesNUL: no field's text holds a NUL, and the index joins the fields with one: a q
// holding one is refused rather than matched across two fields.
func TestQRefusesNUL(t *testing.T) {
	_, err := compileFilter(api.Filter{Q: "a\x00b"})
	var e *api.Error
	if !errors.As(err, &e) || e.Code != api.CodeInvalid || e.Field != "q" {
		t.Fatalf("q with a NUL: %v, want a 400 naming q", err)
	}
}

// TestTextIndexLeavesOutFieldBoundaries: a trigram that spans two fields of a row's text holds
// sep, which q never holds, so the index does not keep it; the fields' own trigrams it keeps.
func TestTextIndexLeavesOutFieldBoundaries(t *testing.T) {
	x := newTextIndex()
	x.stage([]textChange{{id: uuid.New(), new: "abc" + string(rune(sep)) + "def" + string(rune(sep))}})
	var kept []uint32
	for tri := range x.postings {
		if tri>>16 == sep || tri>>8&0xff == sep || tri&0xff == sep {
			t.Errorf("trigram %06x spans two fields", tri)
		}
		kept = append(kept, tri)
	}
	slices.Sort(kept)
	if want := append(trigrams("abc"), trigrams("def")...); !slices.Equal(kept, want) {
		t.Fatalf("trigrams kept %06x, want those of abc and def", kept)
	}
}

// indexedRows is a text index with the texts it was given, to check its candidates against.
type indexedRows struct {
	t     *testing.T
	x     *textIndex
	ids   []uuid.UUID
	texts map[uuid.UUID]string
}

func newIndexedRows(t *testing.T) *indexedRows {
	return &indexedRows{t: t, x: newTextIndex(), texts: map[uuid.UUID]string{}}
}

// set gives rows new texts in one batch, as Commit does: stage, then unstage.
func (r *indexedRows) set(texts map[uuid.UUID]string) {
	var changes []textChange
	for id, text := range texts {
		old, known := r.texts[id]
		if !known {
			r.ids = append(r.ids, id)
		}
		changes = append(changes, textChange{id: id, old: old, new: text})
		r.texts[id] = text
	}
	r.x.unstage(r.x.stage(changes))
}

// check: the candidates for q are exactly the rows whose text holds every trigram of q.
func (r *indexedRows) check(q string) int {
	r.t.Helper()
	got, ok := r.x.candidates(q, r.x.gen.Load())
	if !ok {
		r.t.Fatalf("q %q: the index did not answer at its own generation", q)
	}
	var want []uuid.UUID
	for _, id := range r.ids {
		holds := true
		for i := 0; i+3 <= len(q); i++ {
			if !strings.Contains(r.texts[id], q[i:i+3]) {
				holds = false
				break
			}
		}
		if holds {
			want = append(want, id)
		}
	}
	byBytes := func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }
	slices.SortFunc(got, byBytes)
	slices.SortFunc(want, byBytes)
	if !slices.Equal(got, want) {
		r.t.Fatalf("q %q: %d candidates, want %d", q, len(got), len(want))
	}
	return len(want)
}

// TestTextIndexBeyondOneContainer: with more rows than one bitmap container holds (65,536
// slots), candidates are exact across containers, with trigrams every row holds, trigrams of
// either container only, and trigrams of a few rows, also after rows changed in both.
func TestTextIndexBeyondOneContainer(t *testing.T) {
	r := newIndexedRows(t)
	const n = 70000
	text := func(i int, tag string) string {
		return fmt.Sprintf("row%06d%cshared%c%s%c", i, sep, sep, tag, sep)
	}
	texts := map[uuid.UUID]string{}
	for i := range n {
		texts[uuid.New()] = text(i, "")
		if len(texts) == 5000 || i == n-1 {
			r.set(texts)
			texts = map[uuid.UUID]string{}
		}
	}
	rng := rand.New(rand.NewPCG(70000, 1))
	for round := range 3 {
		for range 500 {
			i := rng.IntN(n)
			texts[r.ids[i]] = text(i, fmt.Sprintf("tag%d", round))
		}
		r.set(texts)
		texts = map[uuid.UUID]string{}
		for _, q := range []string{"shared", "row", "row0", "row06", "row069", "row0655", "row065536", "row065535", "ow0699", "tag", fmt.Sprintf("tag%d", round), "tag0", "zzz"} {
			r.check(q)
		}
		if r.check("hared") != n || r.check(fmt.Sprintf("tag%d", round)) == 0 || r.check("row06") != n-60000 {
			t.Fatalf("round %d: the queries did not find what the rows hold", round)
		}
	}
}

// TestTextIndexRowEmptiedAndRefilled: a row whose text loses every trigram is no candidate for
// any, and is again once its text comes back, at the same slot.
func TestTextIndexRowEmptiedAndRefilled(t *testing.T) {
	r := newIndexedRows(t)
	a, b := uuid.New(), uuid.New()
	r.set(map[uuid.UUID]string{a: "alpha-one", b: "alpha-two"})
	if r.check("alpha") != 2 {
		t.Fatal("both rows hold alpha")
	}
	gen := r.x.gen.Load()
	r.set(map[uuid.UUID]string{a: ""})
	if r.x.gen.Load() == gen {
		t.Fatal("trigrams removed without a new generation")
	}
	if r.check("alpha") != 1 || r.check("one") != 0 {
		t.Fatal("the emptied row is still a candidate")
	}
	r.set(map[uuid.UUID]string{a: "alpha-one"})
	if r.check("alpha") != 2 || r.check("one") != 1 {
		t.Fatal("the refilled row is no candidate")
	}
	if len(r.x.ids) != 2 {
		t.Fatalf("%d slots for 2 rows", len(r.x.ids))
	}
}

// TestTextIndexDropsEmptyTrigram: a trigram no row holds any more leaves the postings, and q
// over it has no candidates, answered by the index.
func TestTextIndexDropsEmptyTrigram(t *testing.T) {
	r := newIndexedRows(t)
	a := uuid.New()
	r.set(map[uuid.UUID]string{a: "xyz-abc", uuid.New(): "abc"})
	xyz := trigrams("xyz")[0]
	if _, ok := r.x.postings[xyz]; !ok {
		t.Fatal("xyz is not indexed")
	}
	r.set(map[uuid.UUID]string{a: "abc"})
	if _, ok := r.x.postings[xyz]; ok {
		t.Fatal("xyz, which no row holds, is still in the postings")
	}
	if r.check("xyz") != 0 || r.check("abc") != 2 {
		t.Fatal("wrong candidates after xyz was dropped")
	}
}

// TestTextIndexReadersDuringWrites: readers that query views while the writer commits batch
// after batch (run with -race: the bitmaps are shared) find through the index exactly the rows a
// scan of their view finds.
func TestTextIndexReadersDuringWrites(t *testing.T) {
	x := &textModel{t: t, rng: rand.New(rand.NewPCG(7, 16)), m: NewModel(), ts: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	x.batch(300, 0)
	done := make(chan struct{})
	var wg sync.WaitGroup
	var queries atomic.Int64
	for reader := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				q := []string{"hab", "a-0", "b0.x", "0-a", "ab", "aab"}[(i+reader)%6]
				v := x.m.View()
				f, err := compileFilter(api.Filter{Q: q})
				if err != nil {
					t.Error(err)
					return
				}
				var got []uuid.UUID
				if err := f.each(v, func(r *resource) bool { got = append(got, r.id()); return true }); err != nil {
					t.Error(err)
					return
				}
				var want []uuid.UUID
				v.each(func(r *resource) bool {
					if strings.Contains(r.text(), q) {
						want = append(want, r.id())
					}
					return true
				})
				if !slices.Equal(sortedIDs(got), sortedIDs(want)) {
					t.Errorf("q %q at sequence %d: the filter finds %d rows, a scan %d", q, v.Sequence(), len(got), len(want))
					return
				}
				queries.Add(1)
			}
		})
	}
	for range 40 {
		x.batch(10, 40)
	}
	close(done)
	wg.Wait()
	if queries.Load() == 0 {
		t.Fatal("no reader query ran while the writer committed")
	}
}
