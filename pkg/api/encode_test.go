package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// requests returns one request of every command type, filled from fuzz input: s are the
// strings (any bytes), ts the timestamp (nil when noTime), flags drop the optional members.
func requests(s [4]string, ts *time.Time, flags uint8) []any {
	env := Envelope{CommandID: s[0], CorrelationID: s[1], CausationID: s[2], Timestamp: ts}
	if flags&1 != 0 {
		env = Envelope{}
	}
	if flags&2 != 0 {
		env.CorrelationID = ""
	}
	tg := Target{Envelope: env, AggregateID: s[3]}
	opt := func(bit uint8, v string) *string {
		if flags&bit != 0 {
			return nil
		}
		return &v
	}
	return []any{
		&Register{Envelope: env, AggregateID: s[3], Hostname: s[1], ResourceType: s[2]},
		&Register{Envelope: env, Hostname: s[0], ResourceType: s[3]},
		&AssignOrganization{Target: tg, OrganizationID: s[0]},
		&AssignLocation{Target: tg, LocationID: s[1]},
		&AssignOwner{Target: tg, OwnerID: s[2]},
		&AddPolicy{Target: tg, PolicyID: s[0]},
		&RemovePolicy{Target: tg, PolicyID: s[1]},
		&AssignAccountConcept{Target: tg, ConceptID: s[2]},
		&ClearAccountConcept{Target: tg},
		&SetHardwareDetails{Target: tg, Manufacturer: opt(4, s[0]), Model: opt(8, s[1]), SerialNumber: opt(16, s[2])},
		&AssignAssetTag{Target: tg, AssetTag: s[0]},
		&UpdateMetadata{Target: tg, Key: s[1], Value: s[2]},
		&ChangeStatus{Target: tg, Status: s[0]},
	}
}

// FuzzRequestEncoding checks that the client's hand-written request encoding gives the bytes
// of json.Marshal for every command type, with any strings and timestamps, and leaves
// json.Marshal the timestamps it refuses.
func FuzzRequestEncoding(f *testing.F) {
	const id = "0b9f8d2e-3c1a-4e5b-8f7d-6a2c1e0d9b8a"
	f.Add(id, id, "", id, int64(1768816800), uint32(5), int16(0), uint8(0))
	f.Add("", "", "", "", int64(0), uint32(0), int16(0), uint8(0x21))
	f.Add("R&D <\"lab\">", "ünïcode \u2028\u2029", "\x00\x1f\b\f\n\r\t\\\xff", "\xed\xa0\x80", int64(-62135596800), uint32(1), int16(-47), uint8(4))
	f.Add("a", "b", "c", "d", int64(253402300800), uint32(0), int16(0), uint8(0))  // year 10000
	f.Add("a", "b", "c", "d", int64(1768816800), uint32(0), int16(24*4), uint8(0)) // zone +24:00
	f.Fuzz(func(t *testing.T, s0, s1, s2, s3 string, sec int64, nsec uint32, quarters int16, flags uint8) {
		var ts *time.Time
		if flags&0x20 == 0 {
			tm := time.Unix(sec, int64(nsec%1e9)).In(time.FixedZone("", int(quarters)*900))
			ts = &tm
		}
		for _, req := range requests([4]string{s0, s1, s2, s3}, ts, flags) {
			want, wantErr := json.Marshal(req)
			got, ok := appendRequest([]byte("prefix"), req)
			switch {
			case !ok && wantErr == nil:
				t.Fatalf("%#v: hand-written encoding refused, json.Marshal gave %s", req, want)
			case ok && wantErr != nil:
				t.Fatalf("%#v: hand-written encoding gave %s, json.Marshal refused: %v", req, got, wantErr)
			case ok && !bytes.Equal(got, append([]byte("prefix"), want...)):
				t.Fatalf("%#v:\n got %s\nwant prefix%s", req, got, want)
			}
		}
	})
}

// plainReply is CommandReply without its methods: what encoding/json makes of the struct.
type plainReply CommandReply

// FuzzCommandReplyJSON checks that CommandReply.MarshalJSON gives the bytes encoding/json
// gives for the struct, that json.Marshal (which calls it) still does, and that the client's
// fast reply decoding reads back what it wrote wherever it takes it.
func FuzzCommandReplyJSON(f *testing.F) {
	f.Add("7c3e2a1b-9d8f-4e6a-b5c4-3d2e1f0a9b8c", uint64(42), "PolicyAdded", "5b0c1a52-6f0e-5a8e-9d3b-8c2f7e4a1d01", uint8(1), false)
	f.Add("", uint64(0), "", "", uint8(0), true)
	f.Add("R&D <\"lab\">", uint64(1<<64-1), "\u2028\xff", "\x01", uint8(255), true)
	f.Fuzz(func(t *testing.T, id string, version uint64, typ, eventID string, events uint8, duplicate bool) {
		r := CommandReply{AggregateID: id, Version: version, Duplicate: duplicate}
		if events != 255 {
			r.Events = []EventRef{}
		}
		for i := range int(events % 4) {
			r.Events = append(r.Events, EventRef{Type: typ, ID: eventID, Sequence: version + uint64(i)})
		}
		want, err := json.Marshal(plainReply(r))
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.MarshalJSON()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%#v: MarshalJSON %s (%v), encoding/json %s", r, got, err, want)
		}
		if viaMarshal, err := json.Marshal(r); err != nil || !bytes.Equal(viaMarshal, want) {
			t.Fatalf("%#v: json.Marshal %s (%v), encoding/json %s", r, viaMarshal, err, want)
		}
		checkDecodeReply(t, got)
	})
}

// checkDecodeReply checks the fast reply decoding of data against json.Unmarshal.
func checkDecodeReply(t *testing.T, data []byte) {
	t.Helper()
	var fast, want CommandReply
	wantErr := json.Unmarshal(data, &want)
	if decodeCommandReply(data, &fast) {
		if wantErr != nil || !reflect.DeepEqual(fast, want) {
			t.Fatalf("%q: fast decoding %#v, json.Unmarshal %#v (%v)", data, fast, want, wantErr)
		}
	} else if !fast.isZero() {
		t.Fatalf("%q: fast decoding refused the reply but left %#v", data, fast)
	}
}

// FuzzDecodeCommandReply checks the client's fast reply decoding against json.Unmarshal on any
// input: wherever it takes an input, json.Unmarshal accepts it and gives the same value.
func FuzzDecodeCommandReply(f *testing.F) {
	for _, s := range []string{
		`{"aggregate_id":"a","version":3,"events":[{"type":"PolicyAdded","id":"e","sequence":3}]}`,
		`{"aggregate_id":"a","version":3,"events":[],"duplicate":true}`,
		` { "aggregate_id" : "a" , "version" : 0 , "events" : [ { "type" : "T" , "id" : "i" , "sequence" : 1 } , {} ] } `,
		`{"aggregate_id":"a","version":3,"events":null}`, `{"version":-1}`, `{"version":1.5}`, `{"version":1e3}`,
		`{"version":01}`, `{"version":18446744073709551616}`, `{"duplicate":false}`, `{"duplicate":"true"}`,
		`{"Aggregate_ID":"a"}`, `{"aggregate_id":"a","aggregate_id":"b"}`, `{"aggregate_id":"\u0061"}`,
		`{"events":[{"type":"a"}],"events":[{"id":"b"}]}`, `{"other":1}`, `{}`, `[]`, `null`, ``,
		`{"aggregate_id":"a"} x`, `{"aggregate_id":"a",}`, "{\"aggregate_id\":\"\xff\"}", `{"events":[{"sequence":1},]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(checkDecodeReply)
}

// TestFastPathsTaken checks that the client's fast paths are taken for what they are for:
// every command request, and replies as the service writes them.
func TestFastPathsTaken(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("", 3600))
	for _, req := range requests([4]string{"a", "b", "c", "d"}, &ts, 0) {
		if _, ok := appendRequest(nil, req); !ok {
			t.Errorf("%T: encoded by json.Marshal", req)
		}
	}
	for _, r := range []CommandReply{
		{AggregateID: "7c3e2a1b-9d8f-4e6a-b5c4-3d2e1f0a9b8c", Version: 7, Events: []EventRef{{Type: "PolicyAdded", ID: "5b0c1a52-6f0e-5a8e-9d3b-8c2f7e4a1d01", Sequence: 7}}},
		{AggregateID: "7c3e2a1b-9d8f-4e6a-b5c4-3d2e1f0a9b8c", Version: 7, Events: []EventRef{}, Duplicate: true},
	} {
		data, _ := r.MarshalJSON()
		var got CommandReply
		if !decodeCommandReply(data, &got) || !reflect.DeepEqual(got, r) {
			t.Errorf("%s: fast decoding %v, %#v", data, decodeCommandReply(data, &CommandReply{}), got)
		}
	}
	if _, ok := appendRequest(nil, Get{}); ok {
		t.Error("a query was encoded by the command encoder")
	}
}

// BenchmarkClientJSON encodes an add_policy request and decodes its reply, by hand and with
// encoding/json.
func BenchmarkClientJSON(b *testing.B) {
	req := &AddPolicy{Target: Target{Envelope: Envelope{CommandID: "0b9f8d2e-3c1a-4e5b-8f7d-6a2c1e0d9b8a"},
		AggregateID: "7c3e2a1b-9d8f-4e6a-b5c4-3d2e1f0a9b8c"}, PolicyID: "ca05ca05-aaaa-4bbb-8ccc-ddddeeeeffff"}
	reply, _ := json.Marshal(plainReply{AggregateID: req.AggregateID, Version: 12,
		Events: []EventRef{{Type: "PolicyAdded", ID: "5b0c1a52-6f0e-5a8e-9d3b-8c2f7e4a1d01", Sequence: 12}}})
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := appendRequest(make([]byte, 0, 256), req); !ok {
				b.Fatal("not encoded")
			}
			var r CommandReply
			if !decodeCommandReply(reply, &r) {
				b.Fatal("not decoded")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(req); err != nil {
				b.Fatal(err)
			}
			var r CommandReply
			if err := json.Unmarshal(reply, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
