package jetstore_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/cim-infra/registry/pkg/jetstore"
)

// statusValues are status codes that NATS clients read in a Status header, and a word that is
// none, written on stored events as a caller's header.
var statusValues = []string{"100", "204", "404", "408", "409", "503", "active"}

// testCallerHeaders: Append refuses the header names that NATS clients read as the server's
// status (Status, Description, in any case), and every other name a caller may set, with any
// of those values, on events with and without data, single or batched, round-trips through
// Load, LastEvent and ReadAll.
func testCallerHeaders(t *testing.T, e env) {
	st := e.Store
	refused := newAgg(t)
	for _, name := range []string{"Status", "Description", "status", "DESCRIPTION"} {
		for _, data := range [][]byte{nil, []byte(`{}`)} {
			for _, n := range []int{1, 2} {
				evs := newEvents(n, "Refused")
				evs[n-1].Data, evs[n-1].Headers = data, map[string]string{name: "404"}
				if _, err := st.Append(ctxT(t), refused, 0, evs); !errors.Is(err, jetstore.ErrInvalidEvent) {
					t.Errorf("Append of %d events with header %s: %v, want ErrInvalidEvent", n, name, err)
				}
			}
		}
	}
	if l := mustLoad(t, st, refused); len(l.Events) != 0 {
		t.Fatalf("refused appends wrote %d events", len(l.Events))
	}

	agg := newAgg(t)
	var want []jetstore.Event
	var last, first uint64
	for _, name := range []string{"Tenant", "Status-Code", "X-Status", "Reason", "KV-Operation", "Traceparent", "Content-Type"} {
		for _, v := range statusValues {
			evs := newEvents(3, "Headed")
			for i := range evs {
				evs[i].Headers = map[string]string{name: v}
			}
			evs[0].Data, evs[1].Data = nil, nil
			for _, w := range [][]jetstore.Event{evs[:1], evs[1:]} {
				res := mustAppend(t, st, agg, last, w)
				last = res.LastSequence
				if first == 0 {
					first = res.FirstSequence
				}
				want = append(want, w...)
				checkLast(t, st, agg, w[len(w)-1])
			}
		}
	}
	checkReads(t, st, agg, first, want)
}

// testForeignHeaders: events that another client (the nats CLI, a script) wrote on the stream
// with the headers Append refuses, Status and Description with every status value, with and
// without data, and headers of the server's own names, load and read in full, in order.
func testForeignHeaders(t *testing.T, e env) {
	st, agg := e.Store, newAgg(t)
	var want []jetstore.Event
	var first uint64
	headers := []map[string]string{{"Nats-Num-Pending": "0"}, {"Nats-Sequence": "1", "Nats-Subject": "x", "Nats-Time-Stamp": "y"}}
	for _, v := range statusValues {
		headers = append(headers, map[string]string{"Status": v}, map[string]string{"Status": v, "Description": "No Messages"})
	}
	for _, h := range headers {
		for _, data := range [][]byte{nil, []byte(`{"n":1}`)} {
			ev := newEvents(1, "Foreign")[0]
			ev.Data, ev.Headers = data, h
			seq := foreignEvent(t, e, agg, ev)
			if first == 0 {
				first = seq
			}
			want = append(want, ev)
			checkLast(t, st, agg, ev)
		}
	}
	checkReads(t, st, agg, first, want)
}

// checkLast checks that the aggregate's last event is want.
func checkLast(t *testing.T, st *jetstore.Store, agg jetstore.AggregateRef, want jetstore.Event) {
	t.Helper()
	got, ok, err := st.LastEvent(ctxT(t), agg)
	if err != nil || !ok || got.ID != want.ID {
		t.Fatalf("LastEvent after %s (headers %v, %d bytes): %s, ok %v, %v", want.ID, want.Headers, len(want.Data), got.ID, ok, err)
	}
}

// checkReads checks that Load and ReadAll from first return want, headers included (but those
// of the server's names, which reads leave out).
func checkReads(t *testing.T, st *jetstore.Store, agg jetstore.AggregateRef, first uint64, want []jetstore.Event) {
	t.Helper()
	l := mustLoad(t, st, agg)
	sameEvents(t, l.Events, want)
	sameHeaders(t, l.Events, want)
	var all []jetstore.RecordedEvent
	err := st.ReadAll(ctxT(t), first, func(ev jetstore.RecordedEvent) error {
		if ev.Aggregate == agg {
			all = append(all, ev)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ReadAll from %d: %v", first, err)
	}
	sameEvents(t, all, want)
	sameHeaders(t, all, want)
}

func sameHeaders(t *testing.T, got []jetstore.RecordedEvent, want []jetstore.Event) {
	t.Helper()
	for i := range want {
		for k, v := range want[i].Headers {
			if strings.HasPrefix(k, "Nats-") {
				continue
			}
			if g := got[i].Headers[k]; g != v {
				t.Fatalf("event %d (%s): header %s = %q, want %q", i, want[i].ID, k, g, v)
			}
		}
	}
}

// foreignEvent publishes ev on agg's subject as another client may: the store's headers and
// any other, and returns its sequence.
func foreignEvent(t *testing.T, e env, agg jetstore.AggregateRef, ev jetstore.Event) uint64 {
	t.Helper()
	subject, err := e.Store.Subject(agg)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(subject)
	for k, v := range ev.Headers {
		m.Header.Set(k, v)
	}
	for k, v := range map[string]string{
		jetstore.HeaderEventID: ev.ID, jetstore.HeaderEventType: ev.Type, jetstore.HeaderEventVersion: fmt.Sprint(ev.SchemaVersion),
		jetstore.HeaderAggregateType: agg.Type, jetstore.HeaderAggregateID: agg.ID, jetstore.HeaderCorrelationID: ev.CorrelationID,
		jetstore.HeaderCausationID: ev.CausationID, jetstore.HeaderCommandID: ev.CommandID,
	} {
		m.Header.Set(k, v)
	}
	m.Data = ev.Data
	ack, err := e.JS.PublishMsg(ctxT(t), m)
	if err != nil {
		t.Fatalf("publish %s: %v", ev.ID, err)
	}
	return ack.Sequence
}
