package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/natstest"
	jsonv2 "github.com/go-json-experiment/json"
)

// plainReply is CommandReply without its methods: what encoding/json makes of the struct.
type plainReply CommandReply

// FuzzCommandReplyJSON checks that CommandReply.MarshalJSON gives the bytes encoding/json
// gives for the struct, that json.Marshal (which calls it) still does, and that the client's
// reply decoding reads back what it wrote.
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

// checkDecodeReply checks that the client's decoding of a reply as the service writes it (json
// v2, as Client.Do decodes) gives what encoding/json gives, and returns it.
func checkDecodeReply(t *testing.T, data []byte) CommandReply {
	t.Helper()
	var got, want CommandReply
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatalf("%q: encoding/json refuses a reply MarshalJSON wrote: %v", data, err)
	}
	if err := jsonv2.Unmarshal(data, &got); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: the client decodes %#v (%v), encoding/json %#v", data, got, err, want)
	}
	return got
}

// FuzzDecodeCommandReply decodes any input as the client decodes a command reply: wherever it
// takes an input, MarshalJSON writes the value it got as JSON that decodes into the same value.
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
		`{"aggregate_id":"R&D \u003clab\u003e \u2028"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r CommandReply
		if jsonv2.Unmarshal(data, &r) != nil {
			return
		}
		out, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if again := checkDecodeReply(t, out); !reflect.DeepEqual(again, r) {
			t.Fatalf("%q: decoded %#v, encoded %s, decoded again %#v", data, r, out, again)
		}
	})
}

// TestRequestEncoding checks the JSON the client sends for each request type (json v2, as
// Client.Do encodes): an optional member is left out when it is unset, and sent when it is
// set, even to "" or 0 where that means something.
func TestRequestEncoding(t *testing.T) {
	t.Parallel()
	empty := ""
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, tc := range []struct {
		req  any
		want string
	}{
		{&Register{Hostname: "h", ResourceType: "vm"}, `{"hostname":"h","resource_type":"vm"}`},
		{&Register{Envelope: Envelope{CommandID: "c", Timestamp: &ts}, AggregateID: "a", Hostname: "R&D <lab>", ResourceType: "vm"},
			`{"command_id":"c","timestamp":"2026-01-02T03:04:05.000000006Z","aggregate_id":"a","hostname":"R&D <lab>","resource_type":"vm"}`},
		{&SetHardwareDetails{Target: Target{AggregateID: "a"}, Model: &empty}, `{"aggregate_id":"a","model":""}`},
		{&SetHardwareDetails{Target: Target{AggregateID: "a"}}, `{"aggregate_id":"a"}`},
		{&UpdateMetadata{Target: Target{AggregateID: "a"}, Key: "k"}, `{"aggregate_id":"a","key":"k","value":""}`},
		{&ClearAccountConcept{Target: Target{AggregateID: "a"}}, `{"aggregate_id":"a"}`},
		{&Get{AggregateID: "a"}, `{"aggregate_id":"a"}`},
		{&Get{AggregateID: "a", AsOfSequence: 7, AsOfTime: &ts}, `{"aggregate_id":"a","as_of_sequence":7,"as_of_time":"2026-01-02T03:04:05.000000006Z"}`},
		{&History{AggregateID: "a"}, `{"aggregate_id":"a"}`},
		{&History{AggregateID: "a", AfterSequence: 3, Limit: 10}, `{"aggregate_id":"a","after_sequence":3,"limit":10}`},
	} {
		got, err := jsonv2.Marshal(tc.req)
		if err != nil || string(got) != tc.want {
			t.Errorf("%T %+v: encoded %s (%v), want %s", tc.req, tc.req, got, err, tc.want)
		}
	}
}

// TestClientRefusesInvalidUTF8 checks that the client sends no request holding a string that
// is not valid UTF-8, rather than send it changed (encoding/json makes such bytes U+FFFD).
func TestClientRefusesInvalidUTF8(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv.ClientURL())
	sub, err := nc.SubscribeSync(CommandPrefix + ".>")
	if err != nil {
		t.Fatal(err)
	}
	// Nothing answers: the valid request below times out, which does not matter here.
	c, err := NewClient(nc, WithRetries(0), WithTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = c.UpdateMetadata(ctx, UpdateMetadata{Target: Target{AggregateID: "7c3e2a1b-9d8f-4e6a-b5c4-3d2e1f0a9b8c"}, Key: "k", Value: "a\xffb"})
	var apiErr *Error
	if err == nil || errors.As(err, &apiErr) || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("error %v, want a refusal to encode invalid UTF-8", err)
	}
	// A valid request afterwards is the first message on the subject.
	_, _ = c.UpdateMetadata(ctx, UpdateMetadata{Target: Target{AggregateID: "7c3e2a1b-9d8f-4e6a-b5c4-3d2e1f0a9b8c"}, Key: "k", Value: "ok"})
	msg, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(msg.Data, []byte(`"value":"ok"`)) {
		t.Fatalf("first request sent %s", msg.Data)
	}
}

// BenchmarkClientJSON encodes an add_policy request and decodes its reply as the client does.
func BenchmarkClientJSON(b *testing.B) {
	req := &AddPolicy{Target: Target{Envelope: Envelope{CommandID: "0b9f8d2e-3c1a-4e5b-8f7d-6a2c1e0d9b8a"},
		AggregateID: "7c3e2a1b-9d8f-4e6a-b5c4-3d2e1f0a9b8c"}, PolicyID: "ca05ca05-aaaa-4bbb-8ccc-ddddeeeeffff"}
	reply, _ := json.Marshal(plainReply{AggregateID: req.AggregateID, Version: 12,
		Events: []EventRef{{Type: "PolicyAdded", ID: "5b0c1a52-6f0e-5a8e-9d3b-8c2f7e4a1d01", Sequence: 12}}})
	b.Run("library", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jsonv2.Marshal(req); err != nil {
				b.Fatal(err)
			}
			var r CommandReply
			if err := jsonv2.Unmarshal(reply, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
