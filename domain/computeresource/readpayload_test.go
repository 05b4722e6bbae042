package computeresource

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestReadPayloadReadsWhatTheEncoderWrites: every event the encoder writes, of every type, with
// its optional ids and fields present and absent, non-ASCII text and a time in another zone, is
// read by readPayload (not left to the general reading), as encoding/json reads it; except a
// payload with an escape in a string, which is left to the general reading.
func TestReadPayloadReadsWhatTheEncoderWrites(t *testing.T) {
	var events []Event
	for _, e := range sampleEvents(t) {
		events = append(events, e)
	}
	m := goldenMeta
	m.CommandID, m.CausationID = uuid.Nil, uuid.Nil
	m.Timestamp = time.Date(2026, 3, 4, 5, 6, 7, 890, time.FixedZone("", 5*3600+30*60))
	events = append(events,
		HardwareDetailsSet{EventMeta: m},
		HardwareDetailsSet{EventMeta: m, Manufacturer: ptr(""), Model: ptr("Präzision ✓"), SerialNumber: ptr("S")},
		MetadataUpdated{EventMeta: m, Key: "ключ", Value: ""},
		AssetTagAssigned{EventMeta: m, AssetTag: "tag with spaces"},
	)
	for _, e := range events {
		enc, err := EncodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := readPayload(enc.Type, enc.Data)
		if escaped := bytes.IndexByte(enc.Data, '\\') >= 0; ok == escaped {
			t.Fatalf("%s: readPayload read it %v, with an escape %v: %s", enc.Type, ok, escaped, enc.Data)
		}
		if !ok {
			continue
		}
		want, err := decodeWith(enc.Type, enc.Data, json.Unmarshal)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: readPayload read\n%#v\nencoding/json read\n%#v", enc.Type, got, want)
		}
	}
}

// TestReadPayloadLeavesTheRestToTheGeneralReading: a payload in any other form than the
// encoder's is not read by readPayload.
func TestReadPayloadLeavesTheRestToTheGeneralReading(t *testing.T) {
	const env = `"event_id":"5b0c1a52-6f0e-5a8e-9d3b-8c2f7e4a1d01","aggregate_id":"7c3e2a1b-9d8f-4e6a-b5c4-3d2e1f0a9b8c","correlation_id":"c0c0c0c0-1111-4222-8333-444455556666","timestamp":"2026-01-19T10:00:00Z"`
	read := func(typ, data string) bool { _, ok := readPayload(typ, []byte(data)); return ok }
	if !read(EventTypeAssetTagAssigned, `{`+env+`,"asset_tag":"A"}`) {
		t.Fatal("the encoder's form refused")
	}
	for name, data := range map[string]string{
		"another case":       `{` + env + `,"Asset_Tag":"A"}`,
		"a name twice":       `{` + env + `,"asset_tag":"A","asset_tag":"B"}`,
		"null":               `{` + env + `,"asset_tag":null}`,
		"an escape":          `{` + env + `,"asset_tag":"A\u0042"}`,
		"invalid UTF-8":      `{` + env + `,"asset_tag":"A` + "\xff" + `"}`,
		"an unknown member":  `{` + env + `,"asset_tag":"A","x":"y"}`,
		"a number":           `{` + env + `,"asset_tag":1}`,
		"white space":        `{` + env + `, "asset_tag":"A"}`,
		"data after":         `{` + env + `,"asset_tag":"A"}{}`,
		"another type's":     `{` + env + `,"hostname":"a.example.com"}`,
		"a bad id":           `{"event_id":"nope",` + env[len(`"event_id":"5b0c1a52-6f0e-5a8e-9d3b-8c2f7e4a1d01",`):] + `,"asset_tag":"A"}`,
		"a bad time":         `{` + env[:len(env)-len(`2026-01-19T10:00:00Z"`)] + `2026-02-30T10:00:00Z","asset_tag":"A"}`,
		"a control":          `{` + env + `,"asset_tag":"A` + "\t" + `"}`,
		"not an object":      `[` + env + `]`,
		"an unclosed string": `{` + env + `,"asset_tag":"A}`,
	} {
		if read(EventTypeAssetTagAssigned, data) {
			t.Errorf("%s: readPayload read %s", name, data)
		}
	}
	if read(EventTypeStatusChanged, `{`+env+`,"from_status":"active","to_status":"nope"}`) {
		t.Error("a status the domain refuses was read")
	}
}
