package queryservice

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/pkg/api"
)

// TestListJSONEqualsEncodingJSON: the reply list sends, made of the rows' kept encodings, is
// byte for byte what encoding/json writes for the same page: with and without a next cursor,
// empty, and with text that JSON escapes; also when the rows' encodings were kept from an
// earlier page.
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
	v := x.m.View()
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
			if !bytes.Equal(got, wantJSON) {
				t.Fatalf("list %+v, page %d:\n got %s\nwant %s", q, page, got, wantJSON)
			}
			if want.NextCursor == "" {
				break
			}
			if p, err = planList(api.List{Filter: q.Filter, OrderBy: q.OrderBy, Limit: q.Limit, Cursor: want.NextCursor}); err != nil {
				t.Fatal(err)
			}
		}
	}
}
