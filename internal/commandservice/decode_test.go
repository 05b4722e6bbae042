package commandservice

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"maps"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/workload"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// badRequest is a request that must be refused with 400, the kind and field given, and a
// message that contains every one of want.
type badRequest struct {
	name, subject, body string
	kind, field         string
	want                []string
}

// checkBadRequests sends each request raw, as any NATS client can, to a service instance whose
// stream holds one registered resource (sequence 1), and checks the replies and that nothing
// more was written.
func checkBadRequests(t *testing.T, url string, in *instance, tests []badRequest) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := replyError(t, rawRequest(t, in.nc, tt.subject, []byte(tt.body)))
			if e.Code != api.CodeInvalid || e.Kind != tt.kind || e.Field != tt.field {
				t.Fatalf("%s: reply %+v, want 400 %s field %q", tt.body, e, tt.kind, tt.field)
			}
			for _, w := range tt.want {
				if !strings.Contains(e.Message, w) {
					t.Fatalf("%s: message %q does not say %q", tt.body, e.Message, w)
				}
			}
		})
	}
	last, err := testStore(t, url, 1).LastSequence(testCtx(t))
	if err != nil || last != 1 {
		t.Fatalf("stream last sequence %d (%v), want 1: a refused request wrote", last, err)
	}
}

// TestStrictDecoding checks the promise of subjects.md that bodies are decoded strictly, at its
// edges: a name matches its field exactly (case included), a field given twice, an unknown field
// (in the envelope too) and invalid UTF-8 are refused with 400 naming the key, on commands and
// queries alike; a body that is not an object, null included, says so; a sequence that is not
// an unsigned 64-bit integer says what is accepted; a hostname names its wrong character.
func TestStrictDecoding(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	in := startInstance(t, srv.ClientURL())
	reg, err := newClient(t, srv.ClientURL()).Register(testCtx(t), api.Register{Hostname: "web-1", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	id := `"` + reg.AggregateID + `"`
	register := api.CommandSubject(api.CmdRegister)
	metadata := api.CommandSubject(api.CmdUpdateMetadata)
	get := api.QuerySubject(api.QueryGet)
	history := api.QuerySubject(api.QueryHistory)
	const sequence = "a non-negative integer below 2^64"

	checkBadRequests(t, srv.ClientURL(), in, []badRequest{
		{"name in upper case", register, `{"HOSTNAME":"b","resource_type":"vm"}`, api.KindUnknownField, "HOSTNAME", []string{`"HOSTNAME"`}},
		{"name in upper case beside the real one", register, `{"hostname":"a","HOSTNAME":"b","resource_type":"vm"}`, api.KindUnknownField, "HOSTNAME", nil},
		{"name in mixed case", register, `{"hostname":"a","Resource_Type":"vm"}`, api.KindUnknownField, "Resource_Type", []string{`"Resource_Type"`}},
		{"envelope name in another case", register, `{"Command_ID":"` + newID() + `","hostname":"a","resource_type":"vm"}`, api.KindUnknownField, "Command_ID", nil},
		{"query name in another case", get, `{"Aggregate_ID":` + id + `}`, api.KindUnknownField, "Aggregate_ID", nil},
		{"repeated key", register, `{"hostname":"a","hostname":"b","resource_type":"vm"}`, api.KindDuplicateField, "hostname", []string{`"hostname"`}},
		{"repeated key, same value", register, `{"hostname":"a","resource_type":"vm","resource_type":"vm"}`, api.KindDuplicateField, "resource_type", nil},
		{"repeated envelope key", register, `{"command_id":"` + newID() + `","command_id":"` + newID() + `","hostname":"a","resource_type":"vm"}`, api.KindDuplicateField, "command_id", nil},
		{"repeated key, escaped", metadata, `{"aggregate_id":` + id + `,"key":"k","value":"a","v\u0061lue":"b"}`, api.KindDuplicateField, "value", nil},
		{"repeated query key", history, `{"aggregate_id":` + id + `,"limit":1,"limit":2}`, api.KindDuplicateField, "limit", nil},
		{"unknown field", register, `{"hostname":"a","resource_type":"vm","colour":"red"}`, api.KindUnknownField, "colour", []string{`"colour"`}},
		{"unknown field, null", register, `{"hostname":"a","resource_type":"vm","colour":null}`, api.KindUnknownField, "colour", nil},
		{"unknown query field", history, `{"aggregate_id":` + id + `,"page":2}`, api.KindUnknownField, "page", nil},
		{"invalid UTF-8", metadata, "{\"aggregate_id\":" + id + ",\"key\":\"k\",\"value\":\"a\xffb\"}", api.KindInvalidField, "value", []string{"UTF-8", "0xff"}},
		{"null", register, `null`, api.KindMalformedJSON, "", []string{"must be a JSON object, not null"}},
		{"null, padded", get, " null\n", api.KindMalformedJSON, "", []string{"must be a JSON object, not null"}},
		{"array", register, `[]`, api.KindMalformedJSON, "", []string{"must be a JSON object, not an array"}},
		{"string", register, `"x"`, api.KindMalformedJSON, "", []string{"must be a JSON object, not a string"}},
		{"negative sequence", get, `{"aggregate_id":` + id + `,"as_of_sequence":-1}`, api.KindInvalidField, "as_of_sequence", []string{sequence, "not -1"}},
		{"fractional sequence", get, `{"aggregate_id":` + id + `,"as_of_sequence":1.5}`, api.KindInvalidField, "as_of_sequence", []string{sequence, "not 1.5"}},
		{"sequence of 2^64", get, `{"aggregate_id":` + id + `,"as_of_sequence":18446744073709551616}`, api.KindInvalidField, "as_of_sequence", []string{sequence}},
		{"sequence as a string", get, `{"aggregate_id":` + id + `,"as_of_sequence":"1"}`, api.KindInvalidField, "as_of_sequence", []string{sequence, `not "1"`}},
		{"negative history sequence", history, `{"aggregate_id":` + id + `,"after_sequence":-1}`, api.KindInvalidField, "after_sequence", []string{sequence}},
		{"bad time", get, `{"aggregate_id":` + id + `,"as_of_time":"noon"}`, api.KindInvalidField, "as_of_time", []string{"RFC 3339", `"noon"`}},
		{"non-ASCII hostname", register, `{"hostname":"wéb.example.com","resource_type":"vm"}`, api.KindInvalidField, "hostname", []string{`'é'`}},
		{"hostname of wrong type", register, `{"hostname":42,"resource_type":"vm"}`, api.KindInvalidField, "hostname", []string{"must be a string, not 42"}},
		{"trailing value", register, `{"hostname":"a","resource_type":"vm"} {}`, api.KindMalformedJSON, "", nil},
		{"truncated", register, `{"hostname":"a",`, api.KindMalformedJSON, "", []string{"truncated"}},
	})
}

// decodeSeeds are requests of every command as clients send them, and the odd inputs strict
// decoding must refuse or explain: names in another case, duplicates, null, numbers, escapes,
// non-ASCII and invalid UTF-8, bad timestamps, nesting, trailing data.
func decodeSeeds() [][]byte {
	var seeds [][]byte
	g := workload.New(7, 3)
	for range 60 {
		_, body := workload.Request(g.Next())
		data, _ := json.Marshal(body)
		seeds = append(seeds, data)
	}
	const id = `"0b9f8d2e-3c1a-4e5b-8f7d-6a2c1e0d9b8a"`
	for _, s := range []string{
		``, ` `, `{}`, ` { } `, `null`, `[]`, `"x"`, `{"aggregate_id":` + id + `}`,
		`{"aggregate_id":` + id + `,"policy_id":` + id + `,"command_id":` + id + `}`,
		"\t{\n\"aggregate_id\" : " + id + " ,\r\n\"policy_id\":" + id + "}\n",
		`{"Aggregate_ID":` + id + `,"POLICY_ID":` + id + `}`,
		`{"aggregate_id":` + id + `,"aggregate_id":"x"}`,
		`{"aggregate_id":null,"policy_id":` + id + `}`,
		`{"aggregate_id":` + id + `,"model":"a","model":null}`,
		`{"aggregate_id":` + id + `,"manufacturer":"a","manufacturer":"b"}`,
		`{"aggregate_id":` + id + `,"key":"k","value":"a\"b\\c\u00e9\n"}`,
		`{"aggregate_id":` + id + `,"key":"k","value":"éß€😀\u2028"}`,
		"{\"aggregate_id\":" + id + ",\"key\":\"k\",\"value\":\"\xff\xfe\"}",
		"{\"aggregate_id\":" + id + ",\"key\":\"k\",\"value\":\"\xed\xa0\x80\"}",
		"{\"aggregate_id\":" + id + ",\"key\":\"k\",\"value\":\"a\x01b\"}",
		`{"aggregate_id":` + id + `,"asset_tag":7}`,
		`{"aggregate_id":` + id + `,"asset_tag":true}`,
		`{"aggregate_id":` + id + `,"asset_tag":{"a":1}}`,
		`{"aggregate_id":` + id + `,"asset_tag":["a"]}`,
		`{"timestamp":"2026-01-02T15:04:05Z","hostname":"a","resource_type":"vm"}`,
		`{"timestamp":"2026-01-02T15:04:05.123456789+02:00","hostname":"a","resource_type":"vm"}`,
		`{"timestamp":"yesterday","hostname":"a","resource_type":"vm"}`,
		`{"timestamp":"0000-01-01T00:00:00Z","hostname":"a","resource_type":"vm"}`,
		`{"timestamp":"2026-01-02T15:04:05Z","timestamp":"noon","hostname":"a"}`,
		`{"timestamp":12,"hostname":"a","resource_type":"vm"}`,
		`{"timestamp":null,"hostname":"a","resource_type":"vm"}`,
		`{"hostname":"a","resource_type":"vm","colour":"red"}`,
		`{"hostname":"a","resource_type":"vm"} {}`,
		`{"hostname":"a","resource_type":"vm"}x`,
		`{"hostname":"a","resource_type":"vm"`,
		`{"hostname" "a"}`, `{"hostname":"a",}`, `{,}`, `{"hostname":"a"`,
		"\xef\xbb\xbf{}", `{"hostn\u0061me":"a"}`, `{"hostname":"a\/b"}`, `{"HOSTNAME":"a"}`,
		`{"aggregate_id":` + id + `,"status":"active"}`, `{"aggregate_id":` + id + `,"concept_id":` + id + `}`,
		`{"aggregate_id":` + id + `,"as_of_sequence":-1}`, `{"aggregate_id":` + id + `,"as_of_sequence":1e3}`,
		`{"aggregate_id":` + id + `,"as_of_sequence":18446744073709551615,"limit":-0}`,
	} {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

// FuzzDecodeStrict checks strict decoding, for every request type, on any input: an error is a
// 400 *api.Error with a kind and a message (which quotes the field of an unknown or repeated
// name); an input it accepts is a JSON object whose member names are all the type's own,
// exactly and once each, and encoding/json (which is laxer: names in any case, the last of
// repeated names) decodes it into the same value.
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range decodeSeeds() {
		f.Add(s, uint16(1<<10))
	}
	f.Add([]byte(`{"hostname":"a","resource_type":"vm"}`), uint16(10))
	f.Fuzz(func(t *testing.T, data []byte, maxBytes uint16) {
		checkDecodeStrict[api.Register](t, data, int(maxBytes))
		checkDecodeStrict[api.AssignOrganization](t, data, int(maxBytes))
		checkDecodeStrict[api.AssignLocation](t, data, int(maxBytes))
		checkDecodeStrict[api.AssignOwner](t, data, int(maxBytes))
		checkDecodeStrict[api.AddPolicy](t, data, int(maxBytes))
		checkDecodeStrict[api.RemovePolicy](t, data, int(maxBytes))
		checkDecodeStrict[api.AssignAccountConcept](t, data, int(maxBytes))
		checkDecodeStrict[api.ClearAccountConcept](t, data, int(maxBytes))
		checkDecodeStrict[api.SetHardwareDetails](t, data, int(maxBytes))
		checkDecodeStrict[api.AssignAssetTag](t, data, int(maxBytes))
		checkDecodeStrict[api.UpdateMetadata](t, data, int(maxBytes))
		checkDecodeStrict[api.ChangeStatus](t, data, int(maxBytes))
		checkDecodeStrict[api.Get](t, data, int(maxBytes))
		checkDecodeStrict[api.History](t, data, int(maxBytes))
	})
}

func checkDecodeStrict[T any](t *testing.T, data []byte, maxBytes int) {
	t.Helper()
	var got T
	err := decodeStrict(data, maxBytes, &got)
	if err != nil {
		var e *api.Error
		if !errors.As(err, &e) || e.Code != api.CodeInvalid || e.Kind == "" || e.Message == "" {
			t.Fatalf("%T %q: error %#v, want a 400 *api.Error with kind and message", got, data, err)
		}
		// The name may be "", a name like any other.
		if (e.Kind == api.KindUnknownField || e.Kind == api.KindDuplicateField) && !strings.Contains(e.Message, strconv.Quote(e.Field)) {
			t.Fatalf("%T %q: %s does not name the field: %+v", got, data, e.Kind, e)
		}
		return
	}
	known := jsonNames(reflect.TypeFor[T]())
	dec := jsontext.NewDecoder(bytes.NewReader(data), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		t.Fatalf("%T %q: accepted, but it is not an object (%v, %v)", got, data, tok, err)
	}
	seen := map[string]bool{}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			t.Fatalf("%T %q: accepted, but its names do not read: %v", got, data, err)
		}
		if !known[name.String()] || seen[name.String()] {
			t.Fatalf("%T %q: accepted the name %q, which is unknown or repeated", got, data, name.String())
		}
		seen[name.String()] = true
		if err := dec.SkipValue(); err != nil {
			t.Fatalf("%T %q: accepted, but its values do not read: %v", got, data, err)
		}
	}
	var lax T
	laxDec := stdjson.NewDecoder(bytes.NewReader(data))
	laxDec.DisallowUnknownFields()
	if err := laxDec.Decode(&lax); err != nil || !reflect.DeepEqual(got, lax) {
		t.Fatalf("%T %q: strict decoding gave %+v, encoding/json %+v (%v)", got, data, got, lax, err)
	}
}

// jsonNames returns the JSON names of a request type's fields, those of embedded structs
// included.
func jsonNames(t reflect.Type) map[string]bool {
	names := map[string]bool{}
	for f := range t.Fields() {
		if f.Anonymous {
			maps.Copy(names, jsonNames(f.Type))
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		names[name] = true
	}
	return names
}

// BenchmarkDecodeCommand decodes an add_policy request as api.Client sends it: the JSON alone
// (strict) and into the domain command (command).
func BenchmarkDecodeCommand(b *testing.B) {
	data := []byte(`{"command_id":"0b9f8d2e-3c1a-4e5b-8f7d-6a2c1e0d9b8a","aggregate_id":"7c3e2a1b-9d8f-4e6a-b5c4-3d2e1f0a9b8c","policy_id":"ca05ca05-aaaa-4bbb-8ccc-ddddeeeeffff"}`)
	b.Run("strict", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var req api.AddPolicy
			if err := decodeStrict(data, 1<<10, &req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("command", func(b *testing.B) {
		b.ReportAllocs()
		now := time.Now()
		for b.Loop() {
			if _, err := decodeCommand(api.CmdAddPolicy, data, 1<<10, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// clientRequests returns one request of every type, filled from fuzz input: s are the strings
// (any bytes), ts the timestamp (nil when absent), flags drop the optional members.
func clientRequests(s [4]string, ts *time.Time, n uint64, flags uint8) []any {
	env := api.Envelope{CommandID: s[0], CorrelationID: s[1], CausationID: s[2], Timestamp: ts}
	if flags&1 != 0 {
		env = api.Envelope{}
	}
	tg := api.Target{Envelope: env, AggregateID: s[3]}
	opt := func(bit uint8, v string) *string {
		if flags&bit != 0 {
			return nil
		}
		return &v
	}
	return []any{
		&api.Register{Envelope: env, AggregateID: s[3], Hostname: s[1], ResourceType: s[2]},
		&api.AssignOrganization{Target: tg, OrganizationID: s[0]},
		&api.AssignLocation{Target: tg, LocationID: s[1]},
		&api.AssignOwner{Target: tg, OwnerID: s[2]},
		&api.AddPolicy{Target: tg, PolicyID: s[0]},
		&api.RemovePolicy{Target: tg, PolicyID: s[1]},
		&api.AssignAccountConcept{Target: tg, ConceptID: s[2]},
		&api.ClearAccountConcept{Target: tg},
		&api.SetHardwareDetails{Target: tg, Manufacturer: opt(2, s[0]), Model: opt(4, s[1]), SerialNumber: opt(8, s[2])},
		&api.AssignAssetTag{Target: tg, AssetTag: s[0]},
		&api.UpdateMetadata{Target: tg, Key: s[1], Value: s[2]},
		&api.ChangeStatus{Target: tg, Status: s[0]},
		&api.Get{AggregateID: s[3], AsOfSequence: n, AsOfTime: ts},
		&api.History{AggregateID: s[3], AfterSequence: n, Limit: int(int16(n))},
	}
}

// FuzzRequestRoundTrip checks that what api.Client sends (json.Marshal of the request) the
// service decodes into the same request, for every request type, with any strings, numbers
// and timestamps; and that the client refuses to send a string that is not valid UTF-8 rather
// than change it.
func FuzzRequestRoundTrip(f *testing.F) {
	const id = "0b9f8d2e-3c1a-4e5b-8f7d-6a2c1e0d9b8a"
	f.Add(id, id, "", id, int64(1768816800), uint32(5), int16(0), uint64(3), uint8(0))
	f.Add("", "", "", "", int64(0), uint32(0), int16(0), uint64(0), uint8(0x21))
	f.Add("R&D <\"lab\">", "ünïcode \u2028\u2029", "\x00\x1f\b\f\n\r\t\\", "\\u0041", int64(-62135596800), uint32(1), int16(-47), uint64(1<<64-1), uint8(4))
	f.Add("a", "b", "c\xff", "d", int64(1768816800), uint32(0), int16(0), uint64(1), uint8(0))
	f.Add("a", "b", "c", "d", int64(253402300800), uint32(0), int16(0), uint64(1), uint8(0)) // year 10000
	f.Fuzz(func(t *testing.T, s0, s1, s2, s3 string, sec int64, nsec uint32, quarters int16, n uint64, flags uint8) {
		var ts *time.Time
		if flags&0x20 == 0 {
			tm := time.Unix(sec, int64(nsec%1e9)).In(time.FixedZone("", int(quarters)*900))
			ts = &tm
		}
		valid := utf8.ValidString(s0) && utf8.ValidString(s1) && utf8.ValidString(s2) && utf8.ValidString(s3)
		for _, req := range clientRequests([4]string{s0, s1, s2, s3}, ts, n, flags) {
			data, err := json.Marshal(req)
			if err != nil {
				// RFC 3339 holds years 0 to 9999 and zone offsets within a day.
				if valid && (ts == nil || ts.Year() >= 0 && ts.Year() <= 9999 && inADay(*ts)) {
					t.Fatalf("%#v: the client cannot encode it: %v", req, err)
				}
				continue
			}
			got := reflect.New(reflect.TypeOf(req).Elem())
			if err := decodeStrict(data, 1<<20, got.Interface()); err != nil {
				t.Fatalf("%#v: sent as %s, refused: %v", req, data, err)
			}
			// Times come back in a location of their own: compare them as instants, the rest
			// exactly (a string changed on the way, invalid UTF-8 made U+FFFD, fails here).
			sent := reflect.ValueOf(req)
			if !sameTimes(sent.Elem(), got.Elem()) || !reflect.DeepEqual(sent.Interface(), got.Interface()) {
				t.Fatalf("%#v: sent as %s, decoded as %#v", req, data, got.Interface())
			}
		}
	})
}

// inADay reports whether t's zone offset is less than a day either way, as RFC 3339 requires.
func inADay(t time.Time) bool {
	_, off := t.Zone()
	return off > -24*3600 && off < 24*3600
}

// sameTimes reports whether the *time.Time fields of the structs a and b (embedded ones
// included) are nil in both or the same instant, and sets those of b to a's.
func sameTimes(a, b reflect.Value) bool {
	for i := range a.NumField() {
		fa, fb := a.Field(i), b.Field(i)
		switch {
		case fa.Kind() == reflect.Struct:
			if !sameTimes(fa, fb) {
				return false
			}
		case fa.Type() == reflect.TypeFor[*time.Time]():
			ta, tb := fa.Interface().(*time.Time), fb.Interface().(*time.Time)
			if (ta == nil) != (tb == nil) || ta != nil && !ta.Equal(*tb) {
				return false
			}
			fb.Set(fa)
		}
	}
	return true
}

// TestFreeTextRefusesControlCharacters sends free text with control characters, as JSON
// escapes and raw, to every free-text field: each is refused with 400 naming the field, and
// nothing is written (so that no reader, cimctl get included, ever prints them).
func TestFreeTextRefusesControlCharacters(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	in := startInstance(t, srv.ClientURL())
	reg, err := newClient(t, srv.ClientURL()).Register(testCtx(t), api.Register{Hostname: "web-1", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	id := `"` + reg.AggregateID + `"`
	var tests []badRequest
	for _, f := range []struct{ command, field, extra string }{
		{api.CmdUpdateMetadata, "value", `"key":"k",`},
		{api.CmdAssignAssetTag, "asset_tag", ``},
		{api.CmdSetHardwareDetails, "manufacturer", ``},
		{api.CmdSetHardwareDetails, "model", ``},
		{api.CmdSetHardwareDetails, "serial_number", ``},
	} {
		for _, v := range []struct{ name, json string }{
			{"NUL", `a\u0000b`}, {"ESC", `\u001b[2J\u001b[31mred`}, {"newline", `a\nb`},
			{"tab", `a\tb`}, {"DEL", "a\x7fb"}, {"right-to-left override", `a\u202eb`},
		} {
			tests = append(tests, badRequest{f.field + ": " + v.name, api.CommandSubject(f.command),
				`{"aggregate_id":` + id + `,` + f.extra + `"` + f.field + `":"` + v.json + `"}`, api.KindInvalidField, f.field,
				[]string{"printable characters"}})
		}
		// A raw control character is not even JSON.
		tests = append(tests, badRequest{f.field + ": raw newline", api.CommandSubject(f.command),
			"{\"aggregate_id\":" + id + "," + f.extra + "\"" + f.field + "\":\"a\nb\"}", api.KindMalformedJSON, f.field, nil})
		tests = append(tests, badRequest{f.field + ": raw 0xff", api.CommandSubject(f.command),
			"{\"aggregate_id\":" + id + "," + f.extra + "\"" + f.field + "\":\"a\xffb\"}", api.KindInvalidField, f.field, []string{"UTF-8"}})
	}
	checkBadRequests(t, srv.ClientURL(), in, tests)
}
