package jetstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cim-infra/registry/internal/testkit"
	"github.com/cim-infra/registry/pkg/jetstore"
)

func testRoundTrip(t *testing.T, e env) {
	st, agg := e.Store, newAgg(t)
	if l := mustLoad(t, st, agg); len(l.Events) != 0 || l.LastSequence != 0 {
		t.Fatalf("new aggregate: got %d events, last %d", len(l.Events), l.LastSequence)
	}
	var want []jetstore.Event
	var last uint64
	for _, n := range []int{1, 3, 1, 5} {
		evs := newEvents(n, "Happened")
		evs[0].Headers = map[string]string{"Tenant": "t-1"}
		res := mustAppend(t, st, agg, last, evs)
		if res.FirstSequence <= last {
			t.Fatalf("first sequence %d not after %d", res.FirstSequence, last)
		}
		last = res.LastSequence
		want = append(want, evs...)
	}
	l := mustLoad(t, st, agg)
	sameEvents(t, l.Events, want)
	if l.LastSequence != last {
		t.Fatalf("LastSequence %d, want %d", l.LastSequence, last)
	}
	for _, ev := range l.Events {
		if ev.Aggregate != agg || ev.Time.IsZero() {
			t.Fatalf("event %d: aggregate %v, time %v", ev.Sequence, ev.Aggregate, ev.Time)
		}
	}
	if got := l.Events[0].Headers["Tenant"]; got != "t-1" {
		t.Fatalf("custom header: got %q (headers %v)", got, l.Events[0].Headers)
	}
	if l.Events[2].Headers != nil {
		t.Fatalf("event without custom headers got %v", l.Events[2].Headers)
	}
}

// testMessageHeaders reads a stored message raw: consumers route on headers without decoding.
func testMessageHeaders(t *testing.T, e env) {
	agg := newAgg(t)
	evs := newEvents(2, "Routed")
	evs[1].SchemaVersion = 4
	res := mustAppend(t, e.Store, agg, 0, evs)
	str, err := e.JS.Stream(ctxT(t), e.Store.Config().Stream)
	if err != nil {
		t.Fatal(err)
	}
	// The direct get may reach a replica that has not applied the append yet: poll.
	var m *jetstream.RawStreamMsg
	testkit.WaitFor(t, ctxT(t), "the appended message on the replica that answers", func() bool {
		m, err = str.GetMsg(ctxT(t), res.LastSequence)
		return !errors.Is(err, jetstream.ErrMsgNotFound)
	})
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := e.Store.Subject(agg)
	if m.Subject != subject || subject != "cim.evt."+agg.Type+"."+agg.ID {
		t.Fatalf("subject %q, want %q", m.Subject, subject)
	}
	want := map[string]string{
		jetstore.HeaderEventID:       evs[1].ID,
		jetstore.HeaderEventType:     "Routed",
		jetstore.HeaderEventVersion:  "4",
		jetstore.HeaderCorrelationID: evs[1].CorrelationID,
		jetstore.HeaderCausationID:   evs[1].CausationID,
		jetstore.HeaderCommandID:     evs[1].CommandID,
		jetstore.HeaderAggregateType: agg.Type,
		jetstore.HeaderAggregateID:   agg.ID,
	}
	for k, v := range want {
		if got := m.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
}

// testConcurrentWriters: writers with the same expected sequence race, round after round; exactly
// one wins each round and the aggregate holds the winners' events, each once.
func testConcurrentWriters(t *testing.T, e env) {
	const writers, rounds = 20, 4
	st, agg := e.Store, newAgg(t)
	var last uint64
	var want []jetstore.Event
	for round := range rounds {
		size := 1 + round%2*2 // single events and batches of 3
		batches := make([][]jetstore.Event, writers)
		results := make([]jetstore.AppendResult, writers)
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for w := range writers {
			batches[w] = newEvents(size, fmt.Sprintf("Writer%d", w))
			wg.Go(func() { results[w], errs[w] = st.Append(ctxT(t), agg, last, batches[w]) })
		}
		wg.Wait()
		winner := -1
		for w, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: writers %d and %d both won", round, winner, w)
			case err == nil:
				winner = w
			case !errors.Is(err, jetstore.ErrConcurrency):
				t.Fatalf("round %d writer %d: %v, want ErrConcurrency", round, w, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer won", round)
		}
		if results[winner].Duplicate {
			t.Fatalf("round %d: winner reported duplicate", round)
		}
		last = results[winner].LastSequence
		want = append(want, batches[winner]...)
	}
	l := mustLoad(t, st, agg)
	sameEvents(t, l.Events, want)
	if l.LastSequence != last {
		t.Fatalf("LastSequence %d, want %d", l.LastSequence, last)
	}
}

func testFailedBatchWritesNothing(t *testing.T, e env) {
	st, agg := e.Store, newAgg(t)
	first := newEvents(1, "Created")
	res := mustAppend(t, st, agg, 0, first)
	before, err := st.LastSequence(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, expected := range []uint64{0, res.LastSequence + 1000} {
		_, err := st.Append(ctxT(t), agg, expected, newEvents(5, "Lost"))
		if !errors.Is(err, jetstore.ErrConcurrency) {
			t.Fatalf("expected %d: got %v, want ErrConcurrency", expected, err)
		}
	}
	sameEvents(t, mustLoad(t, st, agg).Events, first)
	// Nothing of the batches reached the stream either (other cases may have written meanwhile,
	// so look for the lost events' type among the newer messages of this aggregate type).
	var lost int
	err = st.ReadAll(ctxT(t), before+1, func(ev jetstore.RecordedEvent) error {
		if ev.Type == "Lost" {
			lost++
		}
		return nil
	})
	if err != nil || lost != 0 {
		t.Fatalf("ReadAll: %v, %d lost events stored", err, lost)
	}
}

// testRetryOfLostReply appends, then appends the same events with the same expected sequence, as a
// client does when the reply was lost: the retry must be the same write, not a conflict.
func testRetryOfLostReply(t *testing.T, e env) {
	st := e.Store
	for _, n := range []int{1, 4, 1000} {
		t.Run(fmt.Sprintf("%d events", n), func(t *testing.T) {
			agg := newAgg(t)
			base := mustAppend(t, st, agg, 0, newEvents(1, "Created"))
			evs := newEvents(n, "Changed")
			orig := mustAppend(t, st, agg, base.LastSequence, evs)
			retry, err := st.Append(ctxT(t), agg, base.LastSequence, evs)
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			if !retry.Duplicate || retry.FirstSequence != orig.FirstSequence || retry.LastSequence != orig.LastSequence {
				t.Fatalf("retry: %+v, want duplicate of %+v", retry, orig)
			}
			// A late retry, after the aggregate moved on, is still recognised.
			mustAppend(t, st, agg, orig.LastSequence, newEvents(1, "Later"))
			late, err := st.Append(ctxT(t), agg, base.LastSequence, evs)
			if err != nil || !late.Duplicate || late.FirstSequence != orig.FirstSequence || late.LastSequence != orig.LastSequence {
				t.Fatalf("late retry: %+v, %v; want duplicate of %+v", late, err, orig)
			}
			if l := mustLoad(t, st, agg); len(l.Events) != n+2 {
				t.Fatalf("after retries: %d events, want %d", len(l.Events), n+2)
			}
		})
	}
	// The same first event with a different rest is not the same write: its first id is reused.
	agg := newAgg(t)
	evs := newEvents(3, "Changed")
	mustAppend(t, st, agg, 0, evs)
	other := append([]jetstore.Event{evs[0]}, newEvents(2, "Other")...)
	if _, err := st.Append(ctxT(t), agg, 0, other); !errors.Is(err, jetstore.ErrEventIDReused) {
		t.Fatalf("partial retry: %v, want ErrEventIDReused", err)
	}
}

func testConflictReportsActual(t *testing.T, e env) {
	st, agg := e.Store, newAgg(t)
	res := mustAppend(t, st, agg, 0, newEvents(2, "Created"))
	for _, n := range []int{1, 2} {
		_, err := st.Append(ctxT(t), agg, 0, newEvents(n, "Late"))
		var cerr *jetstore.ConcurrencyError
		if !errors.As(err, &cerr) {
			t.Fatalf("%d events: %v, want *ConcurrencyError", n, err)
		}
		if cerr.Aggregate != agg || cerr.Expected != 0 || cerr.Actual != res.LastSequence {
			t.Fatalf("%d events: %+v, want actual %d", n, cerr, res.LastSequence)
		}
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("%d events: the server's error is not in the chain: %v", n, err)
		}
	}
}

func testBadInput(t *testing.T, e env) {
	st, agg := e.Store, newAgg(t)
	long := strings.Repeat("x", jetstore.MaxTokenLength+1)
	ok := newEvents(1, "Ok")
	cases := []struct {
		name   string
		agg    jetstore.AggregateRef
		events []jetstore.Event
		want   error
	}{
		{"no events", agg, nil, jetstore.ErrNoEvents},
		{"1001 events", agg, newEvents(1001, "Many"), jetstore.ErrTooManyEvents},
		{"empty type", jetstore.AggregateRef{ID: "x"}, ok, jetstore.ErrInvalidAggregate},
		{"empty id", jetstore.AggregateRef{Type: "t"}, ok, jetstore.ErrInvalidAggregate},
		{"dot in id", jetstore.AggregateRef{Type: "t", ID: "a.b"}, ok, jetstore.ErrInvalidAggregate},
		{"star in id", jetstore.AggregateRef{Type: "t", ID: "a*"}, ok, jetstore.ErrInvalidAggregate},
		{"gt in type", jetstore.AggregateRef{Type: ">", ID: "a"}, ok, jetstore.ErrInvalidAggregate},
		{"space in id", jetstore.AggregateRef{Type: "t", ID: "a b"}, ok, jetstore.ErrInvalidAggregate},
		{"tab in id", jetstore.AggregateRef{Type: "t", ID: "a\tb"}, ok, jetstore.ErrInvalidAggregate},
		{"control in id", jetstore.AggregateRef{Type: "t", ID: "a\x01"}, ok, jetstore.ErrInvalidAggregate},
		{"invalid utf8", jetstore.AggregateRef{Type: "t", ID: "a\xff"}, ok, jetstore.ErrInvalidAggregate},
		{"long id", jetstore.AggregateRef{Type: "t", ID: long}, ok, jetstore.ErrInvalidAggregate},
		{"empty event id", agg, []jetstore.Event{{Type: "T", SchemaVersion: 1}}, jetstore.ErrInvalidEvent},
		{"space in event id", agg, []jetstore.Event{{ID: "a b", Type: "T", SchemaVersion: 1}}, jetstore.ErrInvalidEvent},
		{"empty event type", agg, []jetstore.Event{{ID: "x1", SchemaVersion: 1}}, jetstore.ErrInvalidEvent},
		{"version 0", agg, []jetstore.Event{{ID: "x2", Type: "T"}}, jetstore.ErrInvalidEvent},
		{"newline in correlation", agg, []jetstore.Event{{ID: "x3", Type: "T", SchemaVersion: 1, CorrelationID: "a\r\nB: c"}}, jetstore.ErrInvalidEvent},
		{"reserved header", agg, []jetstore.Event{{ID: "x4", Type: "T", SchemaVersion: 1, Headers: map[string]string{"Nats-Rollup": "all"}}}, jetstore.ErrInvalidEvent},
		{"header with colon", agg, []jetstore.Event{{ID: "x5", Type: "T", SchemaVersion: 1, Headers: map[string]string{"a:b": "c"}}}, jetstore.ErrInvalidEvent},
		{"duplicate id in batch", agg, []jetstore.Event{ok[0], ok[0]}, jetstore.ErrInvalidEvent},
		{"bad event late in batch", agg, append(newEvents(3, "Ok"), jetstore.Event{ID: "x6", Type: "T"}), jetstore.ErrInvalidEvent},
	}
	for _, c := range cases {
		if _, err := st.Append(ctxT(t), c.agg, 0, c.events); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	for _, c := range cases[2:12] {
		if _, err := st.Load(ctxT(t), c.agg); !errors.Is(err, jetstore.ErrInvalidAggregate) {
			t.Errorf("Load %s: got %v, want ErrInvalidAggregate", c.name, err)
		}
	}
	for _, opt := range []jetstore.LoadOption{jetstore.UpToSequence(0), jetstore.UpToTime(time.Time{})} {
		if _, err := st.Load(ctxT(t), agg, opt); !errors.Is(err, jetstore.ErrInvalidOption) {
			t.Errorf("Load with bad option: %v, want ErrInvalidOption", err)
		}
	}
	if l := mustLoad(t, st, agg); len(l.Events) != 0 {
		t.Fatalf("bad input wrote %d events", len(l.Events))
	}
}

func testCancelledContext(t *testing.T, e env) {
	st, agg := e.Store, newAgg(t)
	mustAppend(t, st, agg, 0, newEvents(3, "Created"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled", op, err)
		}
		if jetstore.IsUnavailable(err) {
			t.Errorf("%s: a cancelled context is not an outage: %v", op, err)
		}
	}
	_, err := st.Append(ctx, agg, 3, newEvents(1, "Late"))
	check("Append", err)
	_, err = st.Append(ctx, agg, 3, newEvents(3, "Late"))
	check("Append batch", err)
	_, err = st.Load(ctx, agg)
	check("Load", err)
	check("ReadAll", st.ReadAll(ctx, 0, func(jetstore.RecordedEvent) error { return nil }))
	_, err = st.LastSequence(ctx)
	check("LastSequence", err)
	check("EnsureStream", st.EnsureStream(ctx))
	if l := mustLoad(t, st, agg); len(l.Events) != 3 {
		t.Fatalf("cancelled appends wrote: %d events", len(l.Events))
	}

	// A deadline that passes is an outage to report as such (503), not a conflict.
	dctx, dcancel := context.WithTimeout(context.Background(), -1)
	defer dcancel()
	if _, err := st.Load(dctx, agg); !jetstore.IsUnavailable(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Load past its deadline: %v, want ErrUnavailable wrapping DeadlineExceeded", err)
	}
}
