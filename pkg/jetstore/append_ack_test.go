package jetstore

import (
	"reflect"
	"testing"
)

// FuzzReadPubAck checks the fast reading of a publish acknowledgement against nats.go's
// (unmarshalPubAck): wherever readPubAck takes a reply, the reference reads the same ack
// without error.
func FuzzReadPubAck(f *testing.F) {
	for _, s := range []string{
		`{"stream":"CIM_EVENTS","seq":42}`, `{"stream":"CIM_EVENTS","seq":42,"duplicate":true}`, `{"stream":"CIM_EVENTS","seq":1,"duplicate": true}`,
		`{"stream":"S","domain":"hub","seq":0,"duplicate":false}`, ` { "seq" : 7 , "stream" : "S" } `,
		`{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 5"},"stream":"S","seq":0}`,
		`{"stream":"","seq":1}`, `{"seq":1}`, `{}`, `null`, ``, `{"stream":"S","seq":-1}`, `{"stream":"S","seq":1.0}`,
		`{"stream":"S","seq":01}`, `{"stream":"S","seq":18446744073709551616}`, `{"stream":"S","seq":1,"seq":2}`,
		`{"Stream":"S","seq":1}`, `{"stream":"S\u0041","seq":1}`, `{"stream":"S","seq":1,"val":"x"}`,
		`{"stream":"S","seq":1,"type":"io.nats.jetstream.api.v1.pub_ack"}`, `{"stream":"S","seq":1} x`,
		`{"stream":"S","seq":1,}`, "{\"stream\":\"\xff\",\"seq\":1}", `{"stream":"S","seq":1,"duplicate":truex}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ack, ok := readPubAck(data)
		if !ok {
			return
		}
		want, err := unmarshalPubAck(data)
		if err != nil || !reflect.DeepEqual(ack, want) {
			t.Fatalf("%q: read %+v, nats.go's reading %+v (%v)", data, ack, want, err)
		}
	})
}

// TestReadPubAckTakesTheServersAck checks that the acknowledgements the server sends for a
// stored message (as nats-server 2.15 writes them) take the fast path.
func TestReadPubAckTakesTheServersAck(t *testing.T) {
	for _, s := range []string{`{"stream":"CIM_EVENTS","seq":1}`, `{"stream":"CIM_EVENTS","seq":1,"duplicate": true}`,
		`{"stream":"CIM_EVENTS","seq":1,"domain":"hub"}`} {
		if _, ok := readPubAck([]byte(s)); !ok {
			t.Errorf("%s: not read", s)
		}
	}
}
