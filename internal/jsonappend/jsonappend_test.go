package jsonappend

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
)

// FuzzString: String writes what encoding/json writes for any string, valid UTF-8 or not.
func FuzzString(f *testing.F) {
	for _, s := range []string{"", "plain", `<a href="x">&</a>`, "quote \" back\\slash", "line\nsep\u2028\u2029tab\t\x01\x7f", "héllo", "\xff\xfe", "\u00e9\xc3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := String(nil, s); string(got) != string(want) {
			t.Fatalf("String(%q) = %s, want %s", s, got, want)
		}
	})
}

func TestUUIDAndTime(t *testing.T) {
	for range 100 {
		id := uuid.New()
		want, _ := json.Marshal(id.String())
		if got := UUID(nil, id); string(got) != string(want) {
			t.Fatalf("UUID = %s, want %s", got, want)
		}
	}
	for _, tm := range []time.Time{
		time.Date(2026, 12, 7, 13, 4, 5, 123456789, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 6, 1, 2, 3, 4, 500, time.FixedZone("", 2*3600+30*60)),
	} {
		want, _ := json.Marshal(tm)
		if got := Time(nil, tm); string(got) != string(want) {
			t.Fatalf("Time = %s, want %s", got, want)
		}
	}
}

func TestObject(t *testing.T) {
	o := Open([]byte("x"))
	o.String("a", "<b>")
	o.Uint("n", 42)
	o.Name("t")
	o.B = append(o.B, "true"...)
	if got, want := string(o.Close()), `x{"a":"\u003cb\u003e","n":42,"t":true}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}
