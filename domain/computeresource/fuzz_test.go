package computeresource

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// referenceHostname is an independent statement of the hostname rules, to compare
// ParseHostname against.
var referenceLabel = `[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?`
var referenceHostname = regexp.MustCompile(`^` + referenceLabel + `(\.` + referenceLabel + `)*$`)

func referenceValid(s string) bool {
	name := strings.ToLower(strings.TrimSuffix(s, "."))
	if len(name) > MaxHostnameLength || !referenceHostname.MatchString(name) {
		return false
	}
	labels := strings.Split(name, ".")
	return !regexp.MustCompile(`^[0-9]+$`).MatchString(labels[len(labels)-1])
}

func FuzzParseHostname(f *testing.F) {
	for _, s := range []string{"a", "web-01.example.com.", "10.0.0.1", "WEB.123.Example.COM", "-a", "a..b", "x_y", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHostname(s)
		// The reference lower-cases first, and strings.ToLower maps some non-ASCII letters
		// (the Kelvin sign) to ASCII; every non-ASCII byte must be refused.
		if want := referenceValid(s) && !hasNonASCII(s); (err == nil) != want {
			t.Fatalf("ParseHostname(%q) error %v, reference says valid=%v", s, err, want)
		}
		if err != nil {
			var he *HostnameError
			if !errors.Is(err, ErrInvalidHostname) || !errors.As(err, &he) || he.Input != s {
				t.Fatalf("ParseHostname(%q) error %#v", s, err)
			}
			return
		}
		name := h.String()
		if name == "" || len(name) > MaxHostnameLength || strings.HasSuffix(name, ".") || strings.ToLower(name) != name {
			t.Fatalf("ParseHostname(%q) = %q is not canonical", s, name)
		}
		again, err := ParseHostname(strings.ToUpper(name) + ".")
		if err != nil || again != h {
			t.Fatalf("canonical form %q does not parse back: %q %v", name, again, err)
		}
	})
}

func hasNonASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

func FuzzDecodeEvent(f *testing.F) {
	for _, dir := range []string{filepath.Join("testdata", "golden"), filepath.Join("testdata", "v1")} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			typ, version := EventTypeResourceRegistered, 1
			if dir == filepath.Join("testdata", "golden") {
				base := strings.SplitN(filepath.Base(file), ".", 3)
				typ = base[0]
				if base[1] == "v2" || strings.HasPrefix(base[2], "upcast") {
					version = 2
				}
			}
			f.Add(typ, version, data)
		}
	}
	f.Add("StatusChanged", 1, []byte(`{"from_status":null}`))
	f.Add("Nope", 1, []byte(`{}`))
	f.Fuzz(func(t *testing.T, typ string, version int, data []byte) {
		e, err := decodeStored(typ, version, data)
		if err != nil {
			if e != nil {
				t.Fatalf("event %#v returned with error %v", e, err)
			}
			if !errors.Is(err, ErrMalformedEvent) && !errors.Is(err, ErrUnknownEventType) && !errors.Is(err, ErrUnknownEventVersion) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		// Whatever decodes re-encodes at the current version and decodes back equal, and
		// the encoding of the result is stable.
		enc, err := EncodeEvent(e)
		if err != nil {
			t.Fatalf("decoded %#v does not encode: %v", e, err)
		}
		if enc.Type != typ || e.EventType() != typ {
			t.Fatalf("decoded %s as %s", typ, e.EventType())
		}
		back, err := DecodeEvent(enc.Type, enc.Version, enc.Data)
		if err != nil || !reflect.DeepEqual(back, e) {
			t.Fatalf("round trip of %s: %#v %v\nwant %#v", enc.Data, back, err, e)
		}
		enc2, err := EncodeEvent(back)
		if err != nil || !bytes.Equal(enc2.Data, enc.Data) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc.Data, enc2.Data)
		}
		_ = Apply(State{}, e) // never panics
	})
}
