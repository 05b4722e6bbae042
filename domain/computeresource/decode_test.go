package computeresource

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// referenceDecodeEvent is DecodeEvent with encoding/json, the decoder of the stored events'
// first readers: DecodeEvent must read every payload as it does.
func referenceDecodeEvent(typ string, version int, data []byte) (Event, error) {
	current, ok := CurrentVersion(typ)
	if !ok || version != current {
		return DecodeEvent(typ, version, data)
	}
	e, err := decodeWith(typ, data, json.Unmarshal)
	if err != nil {
		return nil, fmt.Errorf("%w: %s version %d: %v", ErrMalformedEvent, typ, version, err)
	}
	if err := validateEvent(e); err != nil {
		return nil, fmt.Errorf("%s version %d: %w", typ, version, err)
	}
	return e, nil
}

// generalDecodeEvent is DecodeEvent without readPayload: json v2 for every payload.
func generalDecodeEvent(typ string, version int, data []byte) (Event, error) {
	e, err := decodeWith(typ, data, unmarshalStored)
	if err != nil {
		return nil, err
	}
	return e, validateEvent(e)
}

// BenchmarkDecodeEvent decodes the sample event of each type with DecodeEvent (readPayload, or
// json v2 for a payload with an escape), with json v2 alone, and with the encoding/json
// reference.
func BenchmarkDecodeEvent(b *testing.B) {
	samples := sampleEvents(b)
	for _, typ := range EventTypes() {
		enc, err := EncodeEvent(samples[typ])
		if err != nil {
			b.Fatal(err)
		}
		for _, bm := range []struct {
			name   string
			decode func(string, int, []byte) (Event, error)
		}{{"decode", DecodeEvent}, {"json-v2", generalDecodeEvent}, {"reference", referenceDecodeEvent}} {
			b.Run(typ+"/"+bm.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(enc.Data)))
				for b.Loop() {
					if _, err := bm.decode(enc.Type, enc.Version, enc.Data); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// decodeEdges are payloads at the edges of what encoding/json accepted from the events'
// first readers: names in another case, a name given twice, null, invalid UTF-8 and
// surrogates in strings and names, unknown members of every JSON type, white space.
var decodeEdges = []struct{ typ, data string }{
	{EventTypeAssetTagAssigned, `{"EVENT_ID":"5b0c1a52-6f0e-5a8e-9d3b-8c2f7e4a1d01","Aggregate_Id":"7c3e2a1b-9d8f-4e6a-b5c4-3d2e1f0a9b8c","correlation_ID":"c0c0c0c0-1111-4222-8333-444455556666","TimeStamp":"2026-01-19T10:00:00Z","ASSET_TAG":"A-1"}`},
	{EventTypeAssetTagAssigned, `{"event_id":"5b0c1a52-6f0e-5a8e-9d3b-8c2f7e4a1d01","aggregate_id":"7c3e2a1b-9d8f-4e6a-b5c4-3d2e1f0a9b8c","correlation_id":"c0c0c0c0-1111-4222-8333-444455556666","timestamp":"2026-01-19T10:00:00Z","asset_tag":"first","asset_tag":"second"}`},
	{EventTypeAssetTagAssigned, `{"event_id":"5b0c1a52-6f0e-5a8e-9d3b-8c2f7e4a1d01","aggregate_id":"7c3e2a1b-9d8f-4e6a-b5c4-3d2e1f0a9b8c","correlation_id":"c0c0c0c0-1111-4222-8333-444455556666","timestamp":"2026-01-19T10:00:00Z","asset_tag":"kept","asset_tag":null}`},
	{EventTypeAssetTagAssigned, `{"event_id":"5b0c1a52-6f0e-5a8e-9d3b-8c2f7e4a1d01","aggregate_id":"7c3e2a1b-9d8f-4e6a-b5c4-3d2e1f0a9b8c","correlation_id":"c0c0c0c0-1111-4222-8333-444455556666","timestamp":"2026-01-19T10:00:00Z","asset_tag":"bad \xff byte \ud800 half"}`},
	{EventTypeAssetTagAssigned, `{"event_id":"5b0c1a52-6f0e-5a8e-9d3b-8c2f7e4a1d01","aggregate_id":"7c3e2a1b-9d8f-4e6a-b5c4-3d2e1f0a9b8c","correlation_id":"c0c0c0c0-1111-4222-8333-444455556666","timestamp":"2026-01-19T10:00:00Z","asset\xfftag":"x","x":[1,-2.5e300,true,false,null,{"y":"\u00e9"}]}`},
	{EventTypeMetadataUpdated, " \t\r\n" + `{"event_id":"5b0c1a52-6f0e-5a8e-9d3b-8c2f7e4a1d01","aggregate_id":"7c3e2a1b-9d8f-4e6a-b5c4-3d2e1f0a9b8c","correlation_id":"c0c0c0c0-1111-4222-8333-444455556666","timestamp":"2026-01-19T10:00:00+01:00","key":"k","value":null}` + "\n"},
	{EventTypeMetadataUpdated, `{"event_id":"5b0c1a52-6f0e-5a8e-9d3b-8c2f7e4a1d01","aggregate_id":"7c3e2a1b-9d8f-4e6a-b5c4-3d2e1f0a9b8c","correlation_id":"c0c0c0c0-1111-4222-8333-444455556666","timestamp":"2026-01-19T10:00:00Z","key":"k","value":"v","eventid":"nope","event-id":"nope"}`},
	{EventTypeHardwareDetailsSet, `{"event_id":"5b0c1a52-6f0e-5a8e-9d3b-8c2f7e4a1d01","aggregate_id":"7c3e2a1b-9d8f-4e6a-b5c4-3d2e1f0a9b8c","correlation_id":"c0c0c0c0-1111-4222-8333-444455556666","timestamp":"2026-01-19T10:00:00Z","model":null,"manufacturer":"","serial_number":"s"}`},
	{EventTypeStatusChanged, `{"event_id":"5b0c1a52-6f0e-5a8e-9d3b-8c2f7e4a1d01","aggregate_id":"7c3e2a1b-9d8f-4e6a-b5c4-3d2e1f0a9b8c","correlation_id":"c0c0c0c0-1111-4222-8333-444455556666","timestamp":"2026-01-19T10:00:00Z","from_status":"Active","to_status":" maintenance "}`},
	{EventTypeResourceRegistered, `{"event_id":"{5b0c1a52-6f0e-5a8e-9d3b-8c2f7e4a1d01}","aggregate_id":"urn:uuid:7c3e2a1b-9d8f-4e6a-b5c4-3d2e1f0a9b8c","correlation_id":"c0c0c0c011114222833344445555666","timestamp":"2026-01-19T10:00:00Z","hostname":"Web-01.Example.COM.","resource_type":"Bare Metal"}`},
	{EventTypeOrganizationAssigned, `{"event_id":"5b0c1a52-6f0e-5a8e-9d3b-8c2f7e4a1d01","aggregate_id":"7c3e2a1b-9d8f-4e6a-b5c4-3d2e1f0a9b8c","correlation_id":"c0c0c0c0-1111-4222-8333-444455556666","timestamp":"2026-01-19T10:00:00Z","organization_id":"0a000000-0000-4000-8000-000000000001"}{}`},
	{EventTypeOrganizationAssigned, `{"event_id":"5b0c1a52-6f0e-5a8e-9d3b-8c2f7e4a1d01","aggregate_id":"7c3e2a1b-9d8f-4e6a-b5c4-3d2e1f0a9b8c","correlation_id":"c0c0c0c0-1111-4222-8333-444455556666","timestamp":"2026-01-19T10:00:00Z","organization_id":"0A000000-0000-4000-8000-000000000001","command_id":null,"causation_id":"ca05ca05-aaaa-4bbb-8ccc-ddddeeeeffff"}`},
	{EventTypeOrganizationAssigned, `{"timestamp":"2026-01-19T10:00:00.5Z","timestamp":"2026-02-30T10:00:00Z"}`},
	{EventTypeOrganizationAssigned, `{"organization_id":["0a000000-0000-4000-8000-000000000001"]}`},
	{EventTypeAccountConceptCleared, `{"event_id":"5b0c1a52-6f0e-5a8e-9d3b-8c2f7e4a1d01","aggregate_id":"7c3e2a1b-9d8f-4e6a-b5c4-3d2e1f0a9b8c","correlation_id":"c0c0c0c0-1111-4222-8333-444455556666","timestamp":"2026-01-19T10:00:00Z",}`},
	{EventTypeAccountConceptCleared, `"a string"`},
	{EventTypeAccountConceptCleared, ``},
}

// FuzzDecodeEventAsReference checks that DecodeEvent reads every payload of a current version
// as encoding/json did: the same event, or an error for the same payloads. Its seeds are the
// golden files, decodeEdges and the sample events.
func FuzzDecodeEventAsReference(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(strings.SplitN(filepath.Base(file), ".", 2)[0], data)
	}
	for _, e := range sampleEvents(f) {
		enc, err := EncodeEvent(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc.Type, enc.Data)
	}
	for _, edge := range decodeEdges {
		f.Add(edge.typ, []byte(edge.data))
	}
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		version, ok := CurrentVersion(typ)
		if !ok {
			return
		}
		got, err := DecodeEvent(typ, version, data)
		want, wantErr := referenceDecodeEvent(typ, version, data)
		if (err == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
			t.Fatalf("DecodeEvent(%s, %q)\n = %#v, %v\nencoding/json: %#v, %v", typ, data, got, err, want, wantErr)
		}
		if err != nil && !errors.Is(err, ErrMalformedEvent) {
			t.Fatalf("DecodeEvent(%s, %q): error %v is not ErrMalformedEvent", typ, data, err)
		}
	})
}
