package resourcestore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/nats-io/nats.go"
)

// FuzzDecodeMsg feeds DecodeMsg, the projectors' door, arbitrary event type and version headers
// and payloads (the domain's FuzzDecodeEvent covers the codec with a well-formed version; this
// covers the header parsing in front of it and the upcast of what a consumer receives). It must
// never panic, and an event it accepts has the type the header names and encodes again.
func FuzzDecodeMsg(f *testing.F) {
	golden, _ := filepath.Glob("../../domain/computeresource/testdata/golden/*.json")
	for _, path := range golden {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		parts := strings.Split(filepath.Base(path), ".") // Type.vN[.upcast-to-v2].json
		f.Add(parts[0], strings.TrimPrefix(parts[1], "v"), data)
	}
	f.Add("ResourceRegistered", "+1", []byte(`{}`))
	f.Add("ResourceRegistered", "99999999999999999999", []byte(`{}`))
	f.Add("", "1", []byte(`{}`))
	f.Add("StatusChanged", "-1", []byte(`{"from":"active","to":"maintenance"}`))

	f.Fuzz(func(t *testing.T, typ, version string, data []byte) {
		h := nats.Header{}
		h.Set(jetstore.HeaderEventType, typ)
		h.Set(jetstore.HeaderEventVersion, version)
		e, err := DecodeMsg(h, data)
		if err != nil {
			return
		}
		if e.EventType() != typ {
			t.Fatalf("header type %q decoded as a %s", typ, e.EventType())
		}
		if _, err := cr.EncodeEvent(e); err != nil {
			t.Fatalf("a decoded %s does not encode again: %v", typ, err)
		}
	})
}
