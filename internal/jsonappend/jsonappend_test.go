package jsonappend

import (
	"encoding/hex"
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
	ids := []uuid.UUID{uuid.Nil, uuid.Max}
	for range 100 {
		ids = append(ids, uuid.New())
	}
	for _, id := range ids {
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

// FuzzTime: Time writes what encoding/json writes for any time of a year from 1 to 9999, in
// UTC (the fast path), in a zone, or at a zero offset that is not UTC.
func FuzzTime(f *testing.F) {
	for _, s := range []int64{0, -1, 1, 86399, 86400, -86400, 951782400, 1796601845, minUTCUnix, maxUTCUnix - 1} {
		f.Add(s, int32(0), int16(0))
		f.Add(s, int32(123456789), int16(-1))
		f.Add(s, int32(500), int16(150))
	}
	f.Fuzz(func(t *testing.T, sec int64, nsec int32, offsetMinutes int16) {
		// Keep to the years MarshalJSON takes in every zone: a day inside 1 to 9999.
		const span = maxUTCUnix - minUTCUnix - 2*86400
		sec = minUTCUnix + 86400 + (sec%span+span)%span
		tm := time.Unix(sec, int64(nsec)%1e9).UTC()
		switch {
		case offsetMinutes == 0:
			tm = tm.In(time.FixedZone("", 0))
		case offsetMinutes%3 == 0:
			tm = tm.In(time.FixedZone("", int(offsetMinutes%(24*60))*60))
		}
		want, err := json.Marshal(tm)
		if err != nil {
			t.Fatal(err)
		}
		if got := Time(nil, tm); string(got) != string(want) {
			t.Fatalf("Time(%v) = %s, want %s", tm, got, want)
		}
	})
}

func TestTimeAtTheEndsOfTheFastPath(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(1600, 2, 29, 12, 0, 0, 10, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 1, time.UTC),
		time.Date(2000, 2, 29, 0, 0, 0, 100000000, time.UTC), time.Date(2100, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(0, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		want := tm.AppendFormat([]byte(`"`), time.RFC3339Nano)
		if got := Time(nil, tm); string(got) != string(want)+`"` {
			t.Fatalf("Time(%v) = %s, want %q", tm, got, want)
		}
	}
}

func TestPlain(t *testing.T) {
	for _, s := range []string{"", "plain", "a-b_c.d:e/f g~", "\x7f\x20"} {
		if !Plain(s) {
			t.Fatalf("Plain(%q) = false", s)
		}
		want, _ := json.Marshal(s)
		if got := PlainString(nil, s); string(got) != string(want) {
			t.Fatalf("PlainString(%q) = %s, want %s", s, got, want)
		}
	}
	for _, s := range []string{"\"", "\\", "<", ">", "&", "\x1f", "\n", "é", "\xff", "\u2028"} {
		if Plain(s) || Plain("ok"+s+"ok") {
			t.Fatalf("Plain(%q) = true", s)
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

// BenchmarkTime: Time of a UTC time (written here, by digit pairs) against time.Time.AppendFormat,
// which Time uses for the others.
func BenchmarkTime(b *testing.B) {
	tm := time.Date(2026, 12, 7, 13, 4, 5, 123456000, time.UTC)
	buf := make([]byte, 0, 64)
	b.Run("Time", func(b *testing.B) {
		for range b.N {
			buf = Time(buf[:0], tm)
		}
	})
	b.Run("AppendFormat", func(b *testing.B) {
		for range b.N {
			buf = append(tm.AppendFormat(append(buf[:0], '"'), time.RFC3339Nano), '"')
		}
	})
}

func BenchmarkUUID(b *testing.B) {
	id := uuid.MustParse("7d444840-9dc0-11d1-b245-5ffdce74fad2")
	buf := make([]byte, 0, 64)
	b.Run("UUID", func(b *testing.B) {
		for range b.N {
			buf = UUID(buf[:0], id)
		}
	})
	b.Run("String", func(b *testing.B) {
		for range b.N {
			buf = append(append(append(buf[:0], '"'), id.String()...), '"')
		}
	})
	b.Run("Hex", func(b *testing.B) {
		for range b.N {
			buf = uuidHex(buf[:0], id)
		}
	})
}

// uuidHex is UUID by encoding/hex, the writer UUID replaced, for FuzzUUID and BenchmarkUUID.
func uuidHex(b []byte, id uuid.UUID) []byte {
	var buf [38]byte
	buf[0], buf[9], buf[14], buf[19], buf[24], buf[37] = '"', '-', '-', '-', '-', '"'
	hex.Encode(buf[1:9], id[:4])
	hex.Encode(buf[10:14], id[4:6])
	hex.Encode(buf[15:19], id[6:8])
	hex.Encode(buf[20:24], id[8:10])
	hex.Encode(buf[25:37], id[10:])
	return append(b, buf[:]...)
}

// FuzzUUID: UUID writes what uuid.UUID.String writes, quoted, for any 16 bytes.
func FuzzUUID(f *testing.F) {
	f.Add(uuid.Nil[:])
	f.Add(uuid.Max[:])
	f.Add([]byte("\x00\x09\x0a\x0f\x10\x90\x99\x9a\xa0\xa9\xaf\xf0\xf9\xfa\xff\x5c"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var id uuid.UUID
		copy(id[:], raw)
		want := `"` + id.String() + `"`
		if got := UUID(nil, id); string(got) != want {
			t.Fatalf("UUID(%x) = %s, want %s", id[:], got, want)
		}
		if got := uuidHex(nil, id); string(got) != want {
			t.Fatalf("uuidHex(%x) = %s, want %s", id[:], got, want)
		}
	})
}
