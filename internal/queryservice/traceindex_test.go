package queryservice

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/internal/testkit"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// TestTraceAsOfView: the trace index on a view gives the events up to the view's sequence only,
// in stream order, and a batch that was aborted leaves no event behind.
func TestTraceAsOfView(t *testing.T) {
	m := NewModel()
	correlation, id := uuid.New(), uuid.New()
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	event := func(i int) cr.Event {
		meta := cr.EventMeta{EventID: uuid.New(), AggregateID: id, CommandID: uuid.New(), CorrelationID: correlation, Timestamp: ts.Add(time.Duration(i) * time.Second)}
		if i == 1 {
			host, err := cr.ParseHostname("trace.example.com")
			if err != nil {
				t.Fatal(err)
			}
			return cr.ResourceRegistered{EventMeta: meta, Hostname: host, Type: cr.ResourceTypes()[0]}
		}
		return cr.AssetTagAssigned{EventMeta: meta, AssetTag: "AT"}
	}
	write := func(seq uint64, commit bool) {
		b := m.Begin()
		if err := b.Apply(seq, event(int(seq))); err != nil {
			t.Fatal(err)
		}
		if !commit {
			b.Abort()
			return
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	sequences := func(v View) []uint64 { return v.trace.sequences(correlationKey(correlation), v.Sequence()) }
	write(1, true)
	old := m.View()
	write(2, true)
	write(3, false)
	write(3, true)
	if got := sequences(old); len(got) != 1 || got[0] != 1 {
		t.Fatalf("view at sequence 1 traces %v, want [1]", got)
	}
	if got := sequences(m.View()); len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Fatalf("view at sequence 3 traces %v, want [1 2 3]", got)
	}
}

// TestTraceIndexRunsAndTail: over many tails sorted into runs and runs merged, every lookup at
// every cut-off equals a scan of what was appended, while a reader looks up concurrently with
// the writer (run with -race).
func TestTraceIndexRunsAndTail(t *testing.T) {
	x := newTraceIndex()
	const keys, n = 7, 5*traceTail + 123
	var all []traceEntry
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
				// Whatever the reader sees is in stream order and at or below the cut-off.
				got := x.sequences(3, n/2)
				if !slices.IsSorted(got) || len(got) > 0 && got[len(got)-1] > n/2 {
					t.Errorf("concurrent lookup %v", got)
					return
				}
			}
		}
	})
	for seq := uint64(1); seq <= n; {
		var batch []traceEntry
		for range 1 + seq%300 { // batches of several sizes, some crossing a tail's end
			batch = append(batch, traceEntry{key: seq * 2654435761 % keys, seq: seq})
			seq++
		}
		x.append(batch)
		all = append(all, batch...)
	}
	close(done)
	wg.Wait()
	st := x.cur.Load()
	if len(st.runs) < 2 || len(st.tail) == 0 || len(st.runs) > 3 {
		t.Fatalf("%d runs and %d entries in the tail: want both runs and a tail, runs merged", len(st.runs), len(st.tail))
	}
	for key := range uint64(keys) {
		for _, cut := range []uint64{0, 1, traceTail, traceTail + 1, n / 2, n - 1, n} {
			var want []uint64
			for _, e := range all {
				if e.key == key && e.seq <= cut {
					want = append(want, e.seq)
				}
			}
			if got := x.sequences(key, cut); !slices.Equal(got, want) {
				t.Fatalf("key %d at %d: %d sequences, want %d", key, cut, len(got), len(want))
			}
		}
	}
	if got := x.upTo(n); len(got) != n || !slices.IsSortedFunc(got, compareEntries) {
		t.Fatalf("upTo: %d entries, want %d sorted", len(got), n)
	}
}

// TestTraceKeyCollision: two correlation ids with the same key are told apart: the index gives
// the events of both, and trace leaves out those of the other id, read from the stream.
func TestTraceKeyCollision(t *testing.T) {
	e := newEnv(t, 43, 5)
	ts := time.Date(2027, 4, 1, 0, 0, 0, 0, time.UTC)
	a, b := newMeta(ts), newMeta(ts)
	_, sa1 := e.register("collide-a1.example.com", a)
	_, sb := e.register("collide-b.example.com", b)
	_, sa2 := e.register("collide-a2.example.com", a)
	in := e.startReady(testOptions())
	e.waitSeq(in, e.head)
	m := in.svc.Model()
	// b's event under a's key too, as a colliding correlation id would put it.
	m.trace.append([]traceEntry{{key: correlationKey(a.CorrelationID), seq: sb}})
	v := m.View()
	if got := v.trace.sequences(correlationKey(a.CorrelationID), v.Sequence()); !slices.Equal(got, []uint64{sa1, sb, sa2}) {
		t.Fatalf("index gives %v, want %v", got, []uint64{sa1, sb, sa2})
	}
	for _, c := range []struct {
		id   uuid.UUID
		want []uint64
	}{{a.CorrelationID, []uint64{sa1, sa2}}, {b.CorrelationID, []uint64{sb}}} {
		var tr api.TraceReply
		e.query(api.QueryTrace, api.Trace{CorrelationID: c.id.String()}, &tr)
		var got []uint64
		for _, ev := range tr.Events {
			got = append(got, ev.Sequence)
		}
		if !slices.Equal(got, c.want) {
			t.Fatalf("trace of %s: %v, want %v", c.id, got, c.want)
		}
	}
}

// TestTraceOfUnreadableEvents: an event the index points at that cannot be read from the stream
// fails the trace with 503 unavailable; the trace is not answered shorter. The events stream
// denies deleting messages, and the model's follower is not made to read a deleted stream:
// a stream of their own stands for both.
func TestTraceOfUnreadableEvents(t *testing.T) {
	e := newEnv(t, 47, 5)
	meta := newMeta(time.Date(2027, 4, 1, 0, 0, 0, 0, time.UTC))
	e.register("unreadable-1.example.com", meta)
	e.register("unreadable-2.example.com", meta)
	events, err := e.js.Stream(e.ctx, e.store.Config().Stream)
	if err != nil {
		t.Fatal(err)
	}
	read, err := readEvents(e.ctx, events, []uint64{1, 2})
	if err != nil || len(read) != 2 || correlationOf(read[1].Meta()) != meta.CorrelationID {
		t.Fatalf("events read from the stream: %v, %v", read, err)
	}
	expectUnavailable := func(what string, err error) {
		t.Helper()
		var reply *api.Error
		if !errors.As(err, &reply) || reply.Code != api.CodeUnavailable || reply.Kind != api.KindUnavailable {
			t.Fatalf("%s: %v, want 503 %s", what, err, api.KindUnavailable)
		}
	}
	other, err := e.js.CreateStream(e.ctx, jetstream.StreamConfig{Name: "TRACE_DELETED", Subjects: []string{"trace.deleted"}, AllowDirect: true})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := e.js.Publish(e.ctx, "trace.deleted", []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.DeleteMsg(e.ctx, 1); err != nil {
		t.Fatal(err)
	}
	// Only the deleted message: the other is no event (no headers), and read at once it could
	// fail first, with 500, while the deleted one is still asked for again.
	_, err = readEvents(e.ctx, other, []uint64{1})
	expectUnavailable("a deleted message", err)
	if err := e.js.DeleteStream(e.ctx, "TRACE_DELETED"); err != nil {
		t.Fatal(err)
	}
	_, err = readEvents(e.ctx, other, []uint64{2})
	expectUnavailable("a deleted stream", err)
}

// TestTraceOnReplicatedStream: on a stream of three replicas, where a direct get may be answered
// by a replica that has not stored the latest events yet, a trace asked with min_sequence at
// an event's sequence right after its write finds the event, every time.
func TestTraceOnReplicatedStream(t *testing.T) {
	c := natstest.RunCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	js, err := jetstream.New(natstest.Connect(t, c.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	store, err := jetstore.New(js, jetstore.Config{Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	svc, err := New(natstest.Connect(t, c.ClientURL()), Options{NoSnapshots: true, DefaultWait: 10 * time.Second}, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	testkit.WaitFor(t, ctx, "the query service's readiness", func() bool { return svc.Ready(ctx) == nil })
	client := natstest.Connect(t, c.ClientURL())
	for i := range 30 {
		correlation := uuid.New()
		events := tracedHistory(t, correlation)[:2]
		stored, err := resourcestore.ToStore(events)
		if err != nil {
			t.Fatal(err)
		}
		written, err := store.Append(ctx, resourcestore.Ref(events[0].Meta().AggregateID), 0, stored)
		if err != nil {
			t.Fatal(err)
		}
		var tr api.TraceReply
		apiErr, err := request(ctx, client, api.QueryTrace, api.Trace{CorrelationID: correlation.String(),
			Consistency: api.Consistency{MinSequence: written.LastSequence}}, &tr)
		if err != nil || apiErr != nil {
			t.Fatalf("trace %d: %v %v", i, err, apiErr)
		}
		if len(tr.Events) != 2 || tr.Events[0].Sequence != written.FirstSequence || tr.Events[1].Sequence != written.LastSequence {
			t.Fatalf("trace %d: %+v, want the events at %d and %d", i, tr.Events, written.FirstSequence, written.LastSequence)
		}
	}
}
