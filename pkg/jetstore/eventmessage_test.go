package jetstore_test

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/pkg/jetstore"
)

// TestEventMessageIsWhatAppendStores: the same events, appended on one server (one alone, then
// three as a batch) and published as EventMessage on another, are stored as the same messages
// (subject, data and headers, but the time of the write and the headers by which Append asks
// the server for its checks), and load the same.
func TestEventMessageIsWhatAppendStores(t *testing.T) {
	t.Parallel()
	single := func() env {
		n := natstest.RunServer(t)
		return newEnv(t, n.ClientURL(), 1, func() []*server.Server { return []*server.Server{n.Server()} })
	}
	appended, published := single(), single()
	agg := newAgg(t)
	evs := newEvents(4, "Moved")
	evs[2].Headers = map[string]string{"Tenant": "t1"}
	evs[3].CausationID, evs[3].CommandID = "", ""
	res := mustAppend(t, appended.Store, agg, 0, evs[:1])
	mustAppend(t, appended.Store, agg, res.LastSequence, evs[1:])
	for _, ev := range evs {
		m, err := published.Store.EventMessage(agg, ev)
		if err != nil {
			t.Fatalf("EventMessage(%s): %v", ev.ID, err)
		}
		if _, err := published.JS.PublishMsg(ctxT(t), m); err != nil {
			t.Fatalf("publish %s: %v", ev.ID, err)
		}
	}
	raw := func(e env) []*jetstream.RawStreamMsg {
		s, err := e.JS.Stream(ctxT(t), jetstore.DefaultStream)
		if err != nil {
			t.Fatal(err)
		}
		var out []*jetstream.RawStreamMsg
		for seq := uint64(1); seq <= uint64(len(evs)); seq++ {
			m, err := s.GetMsg(ctxT(t), seq)
			if err != nil {
				t.Fatalf("message %d: %v", seq, err)
			}
			out = append(out, m)
		}
		return out
	}
	want, got := raw(appended), raw(published)
	for i := range evs {
		w, g := want[i], got[i]
		w.Header.Del(jetstream.TimeStampHeaer)
		maps.DeleteFunc(w.Header, func(k string, _ []string) bool {
			return k == jetstream.ExpectedLastSubjSeqHeader || strings.HasPrefix(k, "Nats-Batch-")
		})
		g.Header.Del(jetstream.TimeStampHeaer)
		if w.Subject != g.Subject || string(w.Data) != string(g.Data) || !maps.EqualFunc(w.Header, g.Header, func(a, b []string) bool {
			return strings.Join(a, "\x00") == strings.Join(b, "\x00")
		}) {
			t.Errorf("event %d:\nappended  %s %v %s\npublished %s %v %s", i, w.Subject, w.Header, w.Data, g.Subject, g.Header, g.Data)
		}
	}
	checkReads(t, published.Store, agg, 1, evs)

	bad := evs[0]
	bad.SchemaVersion = 0
	if _, err := published.Store.EventMessage(agg, bad); !errors.Is(err, jetstore.ErrInvalidEvent) {
		t.Errorf("EventMessage of version 0: %v, want ErrInvalidEvent", err)
	}
	if _, err := published.Store.EventMessage(jetstore.AggregateRef{Type: "a.b", ID: "1"}, evs[0]); err == nil {
		t.Error("EventMessage to an aggregate type with a dot: no error")
	}
}
