package commandservice

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/workload"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
)

// fuzzSubjects are the doors the fuzzer knocks on: every command and query subject.
func fuzzSubjects() []string {
	var out []string
	for _, name := range api.Commands() {
		out = append(out, api.CommandSubject(name))
	}
	return append(out, api.QuerySubject(api.QueryGet), api.QuerySubject(api.QueryHistory))
}

// FuzzCommandRequest sends arbitrary bodies to every command and query subject of a real
// service instance (NATS request, micro endpoint, decoding, domain, store) and checks that each
// gets a reply, that an error reply is a client error (400, 404 or 409, never 500 or 503) in
// the micro headers and the JSON body alike, that a success reply decodes, and that a refused
// request wrote nothing to the stream.
func FuzzCommandRequest(f *testing.F) {
	g := workload.New(1, 4)
	g.Now = time.Now // the service refuses a time further than -max-clock-skew from its clock
	for i := range 40 {
		subject, body := workload.Request(g.Next())
		data, _ := json.Marshal(body)
		f.Add(uint8(subjectIndex(subject)), data)
		if i%5 == 0 {
			f.Add(uint8(i), data[:len(data)/2])
		}
	}
	for i, s := range []string{``, `{}`, `null`, `[]`, `{"aggregate_id":"x"}`, `{"command_id":1e999}`,
		`{"hostname":"\xff\xfe","resource_type":"vm"}`, `{"aggregate_id":"00000000-0000-0000-0000-000000000000"}`} {
		f.Add(uint8(i), []byte(s))
	}

	url := natstest.RunServer(f).ClientURL()
	startInstance(f, url)
	nc := natstest.Connect(f, url)
	js, err := jetstream.New(nc)
	if err != nil {
		f.Fatal(err)
	}
	subjects := fuzzSubjects()
	ctx := context.Background()
	msgs := func(t *testing.T) uint64 {
		t.Helper()
		s, err := js.Stream(ctx, jetstore.DefaultStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}

	f.Fuzz(func(t *testing.T, door uint8, body []byte) {
		if int64(len(body)) > nc.MaxPayload()/2 {
			t.Skip("larger than NATS lets a client send; see TestOversizedRequests")
		}
		subject := subjects[int(door)%len(subjects)]
		before := msgs(t)
		msg, err := nc.Request(subject, body, testTimeout)
		if err != nil {
			t.Fatalf("%s %q: no reply: %v", subject, body, err)
		}
		code := msg.Header.Get(micro.ErrorCodeHeader)
		if code == "" {
			var ok any = &api.CommandReply{}
			switch subject {
			case api.QuerySubject(api.QueryGet):
				ok = &api.Resource{}
			case api.QuerySubject(api.QueryHistory):
				ok = &api.HistoryPage{}
			}
			if err := json.Unmarshal(msg.Data, ok); err != nil {
				t.Fatalf("%s %q: success reply %q does not decode: %v", subject, body, msg.Data, err)
			}
			return
		}
		e := replyError(t, msg)
		switch e.Code {
		case api.CodeInvalid, api.CodeNotFound, api.CodeConflict:
		default:
			t.Fatalf("%s %q: error reply %v, want a client error", subject, body, e)
		}
		if e.Kind == "" || e.Message == "" {
			t.Fatalf("%s %q: error reply without kind or message: %s", subject, body, msg.Data)
		}
		if after := msgs(t); after != before {
			t.Fatalf("%s %q: refused with %v, yet the stream went from %d to %d messages", subject, body, e, before, after)
		}
	})
}

func subjectIndex(subject string) int {
	for i, s := range fuzzSubjects() {
		if s == subject {
			return i
		}
	}
	return 0
}
