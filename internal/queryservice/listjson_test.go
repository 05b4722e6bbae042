package queryservice

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
)

// TestListJSONEqualsEncodingJSON: the reply list sends, written by appendJSON, is byte for byte
// what encoding/json writes for the same page: with and without a next cursor, empty, with text
// that JSON escapes, and with times in a zone or with a fraction of a second. Rows whose texts are ASCII that JSON writes as it is are plain (their
// texts copied, not escaped); the others are not.
func TestListJSONEqualsEncodingJSON(t *testing.T) {
	x := &textModel{t: t, rng: rand.New(rand.NewPCG(7, 7)), m: NewModel(), ts: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	x.batch(60, 0)
	b := x.m.Begin()
	for i, v := range []string{`<a href="x">&</a>`, "quote \" back\\slash", "line\nsep\u2028tab\t\x01", "héllo wörld"} {
		id := x.ids[i]
		x.apply(b, id, func(m cr.EventMeta) cr.Event { return cr.MetadataUpdated{EventMeta: m, Key: "k<" + v, Value: v} })
		x.apply(b, id, func(m cr.EventMeta) cr.Event { return cr.AssetTagAssigned{EventMeta: m, AssetTag: v} })
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	x.batch(10, 40)
	b = x.m.Begin()
	// Times in a zone, and one with a fraction of a second.
	zone := time.FixedZone("", -(3*3600 + 30*60))
	for i, ts := range []time.Time{x.ts.In(zone), x.ts.Add(123456789), x.ts.Add(time.Millisecond).In(zone)} {
		x.seq++
		e := cr.MetadataUpdated{EventMeta: cr.EventMeta{EventID: uuid.New(), AggregateID: x.ids[4+i], CommandID: uuid.New(), Timestamp: ts},
			Key: "zone", Value: strconv.Itoa(i)}
		if err := b.Apply(x.seq, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	v := x.m.View()
	plainRows := 0
	for _, id := range x.ids {
		r, _ := v.Resource(id)
		st, err := r.state()
		if err != nil {
			t.Fatal(err)
		}
		w := api.ResourceOf(st, r.version)
		texts := []string{w.Hostname, w.Manufacturer, w.Model, w.SerialNumber, w.AssetTag}
		for k, v := range w.Metadata {
			texts = append(texts, k, v)
		}
		plain := true
		for _, s := range texts {
			j, _ := json.Marshal(s)
			plain = plain && string(j) == `"`+s+`"` && !strings.ContainsFunc(s, func(c rune) bool { return c >= utf8.RuneSelf })
		}
		if r.plain != plain {
			t.Fatalf("row %s (%q): plain %t, want %t", id, texts, r.plain, plain)
		}
		if plain {
			plainRows++
		}
	}
	if plainRows == 0 || plainRows == len(x.ids) {
		t.Fatalf("%d of %d rows plain: the test wants both kinds", plainRows, len(x.ids))
	}
	for _, q := range []api.List{
		{}, {Limit: 7}, {Limit: 1000}, {OrderBy: "-updated_at", Limit: 9},
		{Filter: api.Filter{Q: "a0"}, Limit: 3}, {Filter: api.Filter{Q: "no such text"}},
		{Filter: api.Filter{Metadata: []string{"k"}}, Limit: 2},
	} {
		p, err := planList(q)
		if err != nil {
			t.Fatal(err)
		}
		for page := 0; ; page++ {
			want, err := list(v, p)
			if err != nil {
				t.Fatal(err)
			}
			wantJSON, err := json.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := listJSON(v, p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.bytes(), wantJSON) {
				t.Fatalf("list %+v, page %d:\n got %s\nwant %s", q, page, got.bytes(), wantJSON)
			}
			got.release()
			if want.NextCursor == "" {
				break
			}
			if p, err = planList(api.List{Filter: q.Filter, OrderBy: q.OrderBy, Limit: q.Limit, Cursor: want.NextCursor}); err != nil {
				t.Fatal(err)
			}
		}
	}
}
