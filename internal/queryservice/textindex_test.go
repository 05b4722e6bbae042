package queryservice

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
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
		r := api.ResourceOf(row.state, row.version)
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
	if err := f.each(v, func(r *resource) bool { ids = append(ids, r.id); return true }); err != nil {
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
					from := x.rng.IntN(len(r.text))
					q = strings.ToUpper(r.text[from:min(len(r.text), from+1+x.rng.IntN(6))])
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
