package computeresource

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

var update = flag.Bool("update", false, "rewrite the golden files of current event versions in testdata/golden")

// goldenMeta is the envelope of every sample event.
var goldenMeta = EventMeta{
	EventID:       uuid.MustParse("5b0c1a52-6f0e-5a8e-9d3b-8c2f7e4a1d01"),
	AggregateID:   uuid.MustParse("7c3e2a1b-9d8f-4e6a-b5c4-3d2e1f0a9b8c"),
	CommandID:     uuid.MustParse("0b9f8d2e-3c1a-4e5b-8f7d-6a2c1e0d9b8a"),
	CorrelationID: uuid.MustParse("c0c0c0c0-1111-4222-8333-444455556666"),
	CausationID:   uuid.MustParse("ca05ca05-aaaa-4bbb-8ccc-ddddeeeeffff"),
	Timestamp:     time.Date(2026, 1, 19, 10, 0, 0, 123456789, time.UTC),
}

// sampleEvents has one event of each type, as encoded in the golden files.
func sampleEvents(t testing.TB) map[string]Event {
	m := goldenMeta
	return map[string]Event{
		EventTypeResourceRegistered:     ResourceRegistered{EventMeta: m, Hostname: mustHostname(t, "web-01.example.com"), Type: ResourceTypeVirtualMachine},
		EventTypeOrganizationAssigned:   OrganizationAssigned{EventMeta: m, OrganizationID: OrganizationID(uuid.MustParse("0a000000-0000-4000-8000-000000000001"))},
		EventTypeLocationAssigned:       LocationAssigned{EventMeta: m, LocationID: LocationID(uuid.MustParse("0b000000-0000-4000-8000-000000000002"))},
		EventTypeOwnerAssigned:          OwnerAssigned{EventMeta: m, OwnerID: PersonID(uuid.MustParse("0c000000-0000-4000-8000-000000000003"))},
		EventTypePolicyAdded:            PolicyAdded{EventMeta: m, PolicyID: PolicyID(uuid.MustParse("0d000000-0000-4000-8000-000000000004"))},
		EventTypePolicyRemoved:          PolicyRemoved{EventMeta: m, PolicyID: PolicyID(uuid.MustParse("0d000000-0000-4000-8000-000000000004"))},
		EventTypeAccountConceptAssigned: AccountConceptAssigned{EventMeta: m, ConceptID: AccountConceptID(uuid.MustParse("0e000000-0000-4000-8000-000000000005"))},
		EventTypeAccountConceptCleared:  AccountConceptCleared{EventMeta: m},
		EventTypeHardwareDetailsSet:     HardwareDetailsSet{EventMeta: m, Manufacturer: ptr("Dell Inc."), SerialNumber: ptr("SN-0042")},
		EventTypeAssetTagAssigned:       AssetTagAssigned{EventMeta: m, AssetTag: "ASSET-0042"},
		EventTypeMetadataUpdated:        MetadataUpdated{EventMeta: m, Key: "cost-center/eu", Value: "R&D <\"lab\"> ünïcode"},
		EventTypeStatusChanged:          StatusChanged{EventMeta: m, From: StatusProvisioning, To: StatusActive},
	}
}

func goldenPath(typ string, version int, suffix string) string {
	return filepath.Join("testdata", "golden", fmt.Sprintf("%s.v%d%s.json", typ, version, suffix))
}

// checkGolden compares got with the file, or rewrites the file under -update.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n got: %s\nwant: %s", path, got, want)
	}
}

func TestGoldenCurrentVersions(t *testing.T) {
	samples := sampleEvents(t)
	if len(samples) != len(EventTypes()) {
		t.Fatalf("%d samples for %d event types", len(samples), len(EventTypes()))
	}
	for _, typ := range EventTypes() {
		t.Run(typ, func(t *testing.T) {
			e := samples[typ]
			enc, err := EncodeEvent(e)
			if err != nil {
				t.Fatal(err)
			}
			current, _ := CurrentVersion(typ)
			if enc.Type != typ || enc.Version != current || e.EventType() != typ {
				t.Fatalf("encoded as %s v%d, want %s v%d", enc.Type, enc.Version, typ, current)
			}
			path := goldenPath(typ, current, "")
			checkGolden(t, path, enc.Data)
			stored, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeEvent(typ, current, stored)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, e) {
				t.Errorf("decoded %#v\nwant %#v", got, e)
			}
		})
	}
}

// TestGoldenEveryVersion makes adding a schema version without its fixture fail, and
// decodes every old-version fixture.
func TestGoldenEveryVersion(t *testing.T) {
	t.Parallel()
	for _, typ := range EventTypes() {
		current, _ := CurrentVersion(typ)
		for v := 1; v <= current; v++ {
			if _, err := os.Stat(goldenPath(typ, v, "")); err != nil {
				t.Errorf("no golden file for %s v%d: %v", typ, v, err)
			}
			if v < current {
				data, _ := os.ReadFile(goldenPath(typ, v, ""))
				if _, err := decodeStored(typ, v, data); err != nil {
					t.Errorf("%s v%d golden does not decode: %v", typ, v, err)
				}
			}
		}
	}
}

func TestGoldenResourceRegisteredV1(t *testing.T) {
	data, err := os.ReadFile(goldenPath(EventTypeResourceRegistered, 1, ""))
	if err != nil {
		t.Fatal(err)
	}
	e, err := decodeStored(EventTypeResourceRegistered, 1, data)
	if err != nil {
		t.Fatal(err)
	}
	want := ResourceRegistered{
		EventMeta: EventMeta{
			EventID:       uuid.MustParse("01944f3a-7b2c-7d4e-8f1a-2b3c4d5e6f70"),
			AggregateID:   uuid.MustParse("01944f3a-7b2c-7d4e-8f1a-000000000001"),
			CorrelationID: uuid.MustParse("01944f3a-7b2c-7d4e-8f1a-00000000c0c0"),
			Timestamp:     time.Date(2026, 1, 19, 10, 0, 0, 123456789, time.UTC),
		},
		Hostname: mustHostname(t, "web-01.example.com"),
		Type:     ResourceTypeVirtualMachine,
	}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("decoded %#v\nwant %#v", e, want)
	}
	up, err := upcastResourceRegisteredV1(data)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, goldenPath(EventTypeResourceRegistered, 1, ".upcast-to-v2"), up)
	// The upcast payload is a valid v2 payload that decodes to the same event.
	e2, err := DecodeEvent(EventTypeResourceRegistered, 2, up)
	if err != nil || !reflect.DeepEqual(e2, want) {
		t.Errorf("upcast payload decodes to %#v, %v", e2, err)
	}
}

func TestUpcastUpstreamPayloads(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file      string
		typ       ResourceType
		hostname  string
		causation string
	}{
		{"vm_null_causation.json", ResourceTypeVirtualMachine, "web-01.example.com", ""},
		{"server_with_causation.json", ResourceTypePhysicalServer, "db-primary", "01944f3a-8000-7d4e-8f1a-00000000ca05"},
		{"bare_metal.json", ResourceTypePhysicalServer, "rack1-node07.dc1.example.net", ""},
		{"serde_variant_name.json", ResourceTypeLayer3Switch, "edge-fw", ""},
		{"unrecognised_type.json", ResourceTypeUnknown, "legacy-box", ""},
		{"extra_fields_no_causation.json", ResourceTypeCamera, "cam-lobby", ""},
	}
	for _, tt := range tests {
		data, err := os.ReadFile(filepath.Join("testdata", "v1", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		e, err := decodeStored(EventTypeResourceRegistered, 1, data)
		if err != nil {
			t.Errorf("%s: %v", tt.file, err)
			continue
		}
		rr := e.(ResourceRegistered)
		if rr.Type != tt.typ || rr.Hostname.String() != tt.hostname || rr.CommandID != uuid.Nil {
			t.Errorf("%s: type %v hostname %v command %v", tt.file, rr.Type, rr.Hostname, rr.CommandID)
		}
		wantCause := uuid.Nil
		if tt.causation != "" {
			wantCause = uuid.MustParse(tt.causation)
		}
		if rr.CausationID != wantCause || rr.Timestamp.Location() != time.UTC {
			t.Errorf("%s: causation %v timestamp %v", tt.file, rr.CausationID, rr.Timestamp)
		}
		// A legacy event re-encodes at v2 (without command id) and decodes back equal.
		enc, err := EncodeEvent(rr)
		if err != nil || enc.Version != 2 || bytes.Contains(enc.Data, []byte("command_id")) {
			t.Fatalf("%s: re-encoding: %s %v", tt.file, enc.Data, err)
		}
		back, err := DecodeEvent(enc.Type, enc.Version, enc.Data)
		if err != nil || !reflect.DeepEqual(back, e) {
			t.Errorf("%s: round trip %#v %v", tt.file, back, err)
		}
		// Applied, a legacy registration is a registered resource like any other.
		if s := Apply(State{}, e); !s.Registered() || s.Type() != tt.typ {
			t.Errorf("%s: state after legacy registration: %v %v", tt.file, s.Registered(), s.Type())
		}
	}
}

func TestUpcastersAreExposed(t *testing.T) {
	t.Parallel()
	ups := Upcasters()
	if len(ups) != 1 || ups[0].EventType != EventTypeResourceRegistered || ups[0].FromVersion != 1 {
		t.Fatalf("Upcasters() = %+v", ups)
	}
	data, _ := os.ReadFile(filepath.Join("testdata", "v1", "bare_metal.json"))
	out, err := ups[0].Upcast(data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`"resource_type":"physical_server"`)) || bytes.Contains(out, []byte("event_version")) {
		t.Errorf("upcast output %s", out)
	}
	// Every upcaster leads from a version below current, so a reader's registry can use it.
	for _, u := range ups {
		if cur, ok := CurrentVersion(u.EventType); !ok || u.FromVersion < 1 || u.FromVersion >= cur {
			t.Errorf("upcaster %s v%d does not lead to a known version", u.EventType, u.FromVersion)
		}
	}
}

func TestUpcastMalformedV1(t *testing.T) {
	t.Parallel()
	for name, data := range map[string]string{
		"not JSON":              `{`,
		"not an object":         `[1,2]`,
		"null":                  `null`,
		"no resource_type":      `{"hostname":"a"}`,
		"numeric resource_type": `{"hostname":"a","resource_type":7}`,
		"numeric hostname":      `{"hostname":7,"resource_type":"vm"}`,
	} {
		_, err := decodeStored(EventTypeResourceRegistered, 1, []byte(data))
		if !errors.Is(err, ErrMalformedEvent) {
			t.Errorf("%s: error %v, want ErrMalformedEvent", name, err)
		}
	}
	// A v1 hostname that is not a hostname even by our rules is refused after upcasting.
	bad := `{"event_id":"01944f3a-7b2c-7d4e-8f1a-2b3c4d5e6f70","aggregate_id":"01944f3a-7b2c-7d4e-8f1a-000000000001","timestamp":"2026-01-19T10:00:00Z","hostname":"bad_host","resource_type":"vm","correlation_id":"01944f3a-7b2c-7d4e-8f1a-00000000c0c0"}`
	_, err := decodeStored(EventTypeResourceRegistered, 1, []byte(bad))
	if !errors.Is(err, ErrMalformedEvent) || !strings.Contains(err.Error(), "bad_host") {
		t.Errorf("invalid legacy hostname: %v", err)
	}
}

func TestDecodeEventErrors(t *testing.T) {
	t.Parallel()
	good, err := EncodeEvent(sampleEvents(t)[EventTypeOrganizationAssigned])
	if err != nil {
		t.Fatal(err)
	}
	replace := func(old, new string) []byte {
		if !bytes.Contains(good.Data, []byte(old)) {
			t.Fatalf("sample lacks %s", old)
		}
		return bytes.Replace(good.Data, []byte(old), []byte(new), 1)
	}
	tests := []struct {
		name    string
		typ     string
		version int
		data    []byte
		target  error
		mention string
	}{
		{"unknown type", "ResourceDeleted", 1, good.Data, ErrUnknownEventType, `"ResourceDeleted"`},
		{"version 0", EventTypeOrganizationAssigned, 0, good.Data, ErrUnknownEventVersion, "version 0"},
		{"future version", EventTypeOrganizationAssigned, 2, good.Data, ErrUnknownEventVersion, "version 2"},
		{"future registered version", EventTypeResourceRegistered, 3, good.Data, ErrUnknownEventVersion, "1 to 2"},
		{"version not upcast", EventTypeResourceRegistered, 1, []byte(`{"hostname":"a","resource_type":"vm"}`), ErrUnknownEventVersion, "not upcast"},
		{"not JSON", EventTypeOrganizationAssigned, 1, []byte("{"), ErrMalformedEvent, ""},
		{"trailing data", EventTypeOrganizationAssigned, 1, append(append([]byte{}, good.Data...), '}'), ErrMalformedEvent, ""},
		{"number for id", EventTypeOrganizationAssigned, 1, replace(`"organization_id":"0a000000-0000-4000-8000-000000000001"`, `"organization_id":1`), ErrMalformedEvent, "organization_id"},
		{"nil organization id", EventTypeOrganizationAssigned, 1, replace(`0a000000-0000-4000-8000-000000000001`, uuid.Nil.String()), ErrMalformedEvent, "nil UUID"},
		{"bad event id", EventTypeOrganizationAssigned, 1, replace(`5b0c1a52-6f0e-5a8e-9d3b-8c2f7e4a1d01`, "xyz"), ErrMalformedEvent, ""},
		{"bad timestamp", EventTypeOrganizationAssigned, 1, replace(`2026-01-19T10:00:00.123456789Z`, "yesterday"), ErrMalformedEvent, ""},
		{"missing organization", EventTypeOrganizationAssigned, 1, []byte(`{"event_id":"5b0c1a52-6f0e-5a8e-9d3b-8c2f7e4a1d01","aggregate_id":"7c3e2a1b-9d8f-4e6a-b5c4-3d2e1f0a9b8c","correlation_id":"c0c0c0c0-1111-4222-8333-444455556666","timestamp":"2026-01-19T10:00:00Z"}`), ErrMalformedEvent, "without organization_id"},
		{"empty object", EventTypeAccountConceptCleared, 1, []byte(`{}`), ErrMalformedEvent, "without event_id, aggregate_id, correlation_id, timestamp"},
		{"null", EventTypeStatusChanged, 1, []byte(`null`), ErrMalformedEvent, "from_status"},
		{"bad status", EventTypeStatusChanged, 1, []byte(`{"from_status":"gone"}`), ErrMalformedEvent, `"gone"`},
		{"alias is not a v2 hostname problem", EventTypeResourceRegistered, 2, []byte(`{"hostname":"a_b"}`), ErrMalformedEvent, "a_b"},
		{"array", EventTypeMetadataUpdated, 1, []byte(`[]`), ErrMalformedEvent, ""},
		{"string for key", EventTypeMetadataUpdated, 1, []byte(`{"key":1}`), ErrMalformedEvent, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := DecodeEvent(tt.typ, tt.version, tt.data)
			if !errors.Is(err, tt.target) || e != nil {
				t.Fatalf("DecodeEvent = %v, %v; want %v", e, err, tt.target)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("message %q lacks %q", err, tt.mention)
			}
		})
	}
}

func TestDecodeIsLenientOnUnknownFields(t *testing.T) {
	t.Parallel()
	e := sampleEvents(t)[EventTypeAssetTagAssigned]
	enc, _ := EncodeEvent(e)
	data := bytes.Replace(enc.Data, []byte(`{`), []byte(`{"added_in_a_later_version":{"x":[1,2]},`), 1)
	got, err := DecodeEvent(enc.Type, enc.Version, data)
	if err != nil || !reflect.DeepEqual(got, e) {
		t.Errorf("DecodeEvent with an unknown field = %#v, %v", got, err)
	}
	// Timestamps in another offset are normalised to UTC.
	data = bytes.Replace(enc.Data, []byte(`2026-01-19T10:00:00.123456789Z`), []byte(`2026-01-19T11:00:00.123456789+01:00`), 1)
	got, err = DecodeEvent(enc.Type, enc.Version, data)
	if err != nil || !reflect.DeepEqual(got, e) {
		t.Errorf("DecodeEvent with a +01:00 timestamp = %#v, %v", got, err)
	}
}

func TestEncodeEventErrorsAndDeterminism(t *testing.T) {
	t.Parallel()
	samples := sampleEvents(t)
	for _, typ := range EventTypes() {
		a, err1 := EncodeEvent(samples[typ])
		b, err2 := EncodeEvent(samples[typ])
		if err1 != nil || err2 != nil || !bytes.Equal(a.Data, b.Data) {
			t.Errorf("%s: encoding is not deterministic: %v %v", typ, err1, err2)
		}
	}
	noID := goldenMeta
	noID.EventID = uuid.Nil
	farFuture := goldenMeta
	farFuture.Timestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	local := goldenMeta
	local.Timestamp = goldenMeta.Timestamp.In(time.FixedZone("X", -7*3600))
	for name, tt := range map[string]struct {
		e       Event
		mention string
	}{
		"nil event":          {nil, "nil event"},
		"nil event id":       {AccountConceptCleared{EventMeta: noID}, "without event_id"},
		"zero meta":          {PolicyAdded{}, "without event_id, aggregate_id, correlation_id, timestamp, policy_id"},
		"zero hostname":      {ResourceRegistered{EventMeta: goldenMeta, Type: ResourceTypeOther}, "without hostname"},
		"zero type":          {ResourceRegistered{EventMeta: goldenMeta, Hostname: mustHostname(t, "a")}, "without resource_type"},
		"zero organization":  {OrganizationAssigned{EventMeta: goldenMeta}, "organization_id"},
		"zero location":      {LocationAssigned{EventMeta: goldenMeta}, "location_id"},
		"zero owner":         {OwnerAssigned{EventMeta: goldenMeta}, "owner_id"},
		"zero policy":        {PolicyRemoved{EventMeta: goldenMeta}, "policy_id"},
		"zero concept":       {AccountConceptAssigned{EventMeta: goldenMeta}, "concept_id"},
		"zero status":        {StatusChanged{EventMeta: goldenMeta, From: StatusActive}, "to_status"},
		"empty key":          {MetadataUpdated{EventMeta: goldenMeta}, "without key"},
		"invalid UTF-8":      {AssetTagAssigned{EventMeta: goldenMeta, AssetTag: "\xff"}, "UTF-8"},
		"invalid UTF-8 hw":   {HardwareDetailsSet{EventMeta: goldenMeta, Model: ptr("\xff")}, "UTF-8"},
		"year out of range":  {AccountConceptCleared{EventMeta: farFuture}, "year"},
		"local time is fine": {AccountConceptCleared{EventMeta: local}, ""},
	} {
		_, err := EncodeEvent(tt.e)
		if tt.mention == "" {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if !errors.Is(err, ErrMalformedEvent) || !strings.Contains(err.Error(), tt.mention) {
			t.Errorf("%s: error %v, want ErrMalformedEvent mentioning %q", name, err, tt.mention)
		}
	}
	// Equal instants in different zones encode identically.
	a, _ := EncodeEvent(AccountConceptCleared{EventMeta: local})
	b, _ := EncodeEvent(AccountConceptCleared{EventMeta: goldenMeta})
	if !bytes.Equal(a.Data, b.Data) {
		t.Errorf("zone changes the encoding:\n%s\n%s", a.Data, b.Data)
	}
}

func TestCodecCatalogue(t *testing.T) {
	t.Parallel()
	types := EventTypes()
	if len(types) != 12 {
		t.Fatalf("%d event types", len(types))
	}
	for _, typ := range types {
		if v, ok := CurrentVersion(typ); !ok || v < 1 {
			t.Errorf("CurrentVersion(%s) = %d, %v", typ, v, ok)
		}
	}
	if _, ok := CurrentVersion("CounterIncremented"); ok {
		t.Error("CurrentVersion knows CounterIncremented")
	}
	for _, e := range sampleEvents(t) {
		e.isEvent()
		if e.Meta() != goldenMeta {
			t.Errorf("%s.Meta() = %+v", e.EventType(), e.Meta())
		}
	}
	// A nil event changes nothing.
	s := richState(t, StatusActive)
	if !Apply(s, nil).Equal(s) {
		t.Error("Apply(s, nil) changed the state")
	}
}
