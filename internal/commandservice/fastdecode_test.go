package commandservice

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/workload"
	"github.com/cim-infra/registry/pkg/api"
)

// decodeSeeds are requests of every command as clients send them, and the odd inputs the
// fast path must leave to encoding/json: names in another case, duplicates, null, numbers,
// escapes, non-ASCII and invalid UTF-8, bad timestamps, nesting, trailing data.
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
		"\xef\xbb\xbf{}", `{"hostn\u0061me":"a"}`, `{"hostname":"a\/b"}`,
		`{"aggregate_id":` + id + `,"status":"active"}`, `{"aggregate_id":` + id + `,"concept_id":` + id + `}`,
	} {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

// FuzzDecodeFast checks that decodeStrict, which takes the fast path for the usual requests,
// decodes every input into the same value with the same error as the reference decoder
// (encoding/json) alone, for every command request type, and that wherever the fast path
// takes an input the reference decoder accepts it too. What follows decoding (the envelope,
// UUIDs, the domain's checks) is the same code for both, so the replies are the same.
func FuzzDecodeFast(f *testing.F) {
	for _, s := range decodeSeeds() {
		f.Add(s, uint16(1<<10))
	}
	f.Add([]byte(`{"hostname":"a","resource_type":"vm"}`), uint16(10))
	f.Fuzz(func(t *testing.T, data []byte, maxBytes uint16) {
		checkDecodeFast[api.Register](t, data, int(maxBytes))
		checkDecodeFast[api.AssignOrganization](t, data, int(maxBytes))
		checkDecodeFast[api.AssignLocation](t, data, int(maxBytes))
		checkDecodeFast[api.AssignOwner](t, data, int(maxBytes))
		checkDecodeFast[api.AddPolicy](t, data, int(maxBytes))
		checkDecodeFast[api.RemovePolicy](t, data, int(maxBytes))
		checkDecodeFast[api.AssignAccountConcept](t, data, int(maxBytes))
		checkDecodeFast[api.ClearAccountConcept](t, data, int(maxBytes))
		checkDecodeFast[api.SetHardwareDetails](t, data, int(maxBytes))
		checkDecodeFast[api.AssignAssetTag](t, data, int(maxBytes))
		checkDecodeFast[api.UpdateMetadata](t, data, int(maxBytes))
		checkDecodeFast[api.ChangeStatus](t, data, int(maxBytes))
	})
}

func checkDecodeFast[T any](t *testing.T, data []byte, maxBytes int) {
	t.Helper()
	var got, want, fast T
	err := decodeStrict(data, maxBytes, &got, "timestamp")
	wantErr := decodeReference(data, maxBytes, &want, "timestamp")
	if !reflect.DeepEqual(err, wantErr) {
		t.Fatalf("%T %q: error %#v, reference decoder's %#v", got, data, err, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%T %q: decoded %+v, reference decoder %+v", got, data, got, want)
	}
	if decodeFast(data, maxBytes, &fast) {
		if wantErr != nil || !reflect.DeepEqual(fast, want) {
			t.Fatalf("%T %q: fast path took %+v, reference decoder %+v, %v", got, data, fast, want, wantErr)
		}
	} else if !reflect.ValueOf(fast).IsZero() {
		t.Fatalf("%T %q: fast path refused the input but left %+v", got, data, fast)
	}
}

// TestDecodeFastTakesUsualRequests checks that the fast path is taken where it should pay:
// requests as api.Client sends them, with or without white space, and that it leaves the odd
// ones to the reference decoder.
func TestDecodeFastTakesUsualRequests(t *testing.T) {
	t.Parallel()
	g := workload.New(3, 5)
	for range 200 {
		subject, body := workload.Request(g.Next())
		data, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		indented, err := json.MarshalIndent(body, " ", "\t")
		if err != nil {
			t.Fatal(err)
		}
		for _, data := range [][]byte{data, indented} {
			req := reflect.New(reflect.TypeOf(body)).Interface()
			if !decodeFast(data, 1<<10, req) {
				t.Fatalf("%s %s: fast path not taken", subject, data)
			}
		}
	}
	for _, s := range []string{
		`{"Hostname":"a","resource_type":"vm"}`, `{"hostname":"a\u0062","resource_type":"vm"}`,
		`{"hostname":null,"resource_type":"vm"}`, `{"hostname":"a","resource_type":"vm","x":"y"}`,
		`{"hostname":"a","resource_type":"vm"} {}`, `{"timestamp":"noon","hostname":"a"}`,
	} {
		var req api.Register
		if decodeFast([]byte(s), 1<<10, &req) {
			t.Errorf("%s: fast path taken", s)
		}
	}
	if long := `{"hostname":"` + strings.Repeat("a", 20) + `"}`; decodeFast([]byte(long), 20, &api.Register{}) {
		t.Errorf("%s: fast path taken over the size limit", long)
	}
}

// BenchmarkDecodeCommand decodes an add_policy request as api.Client sends it, with the fast
// path and with the reference decoder alone.
func BenchmarkDecodeCommand(b *testing.B) {
	data := []byte(`{"command_id":"0b9f8d2e-3c1a-4e5b-8f7d-6a2c1e0d9b8a","aggregate_id":"7c3e2a1b-9d8f-4e6a-b5c4-3d2e1f0a9b8c","policy_id":"ca05ca05-aaaa-4bbb-8ccc-ddddeeeeffff"}`)
	for _, bm := range []struct {
		name   string
		decode func([]byte, int, any, string) error
	}{{"fast", decodeStrict}, {"reference", decodeReference}} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var req api.AddPolicy
				if err := bm.decode(data, 1<<10, &req, "timestamp"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
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
