package jetstore_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cim-infra/registry/pkg/jetstore"
)

// testNoConsumersLeftBehind: the original leaked one consumer per load until the server failed.
// Loads, reads and conflicts must leave no consumer on the server and no subscription on the
// client.
func testNoConsumersLeftBehind(t *testing.T, e env) {
	nc := conn(t, e)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := jetstore.New(js, e.Store.Config())
	if err != nil {
		t.Fatal(err)
	}
	agg := newAgg(t)
	res := mustAppend(t, st, agg, 0, newEvents(20, "Loaded"))
	mustLoad(t, st, agg) // the connection's shared reply subscription exists from here on
	serverBefore, streamBefore := consumers(t, e)
	subsBefore := nc.NumSubscriptions()
	for i := range 1000 {
		var opts []jetstore.LoadOption
		if i%2 == 1 {
			opts = append(opts, jetstore.After(res.FirstSequence+uint64(i%19)))
		}
		mustLoad(t, st, agg, opts...)
	}
	for range 10 {
		if err := st.ReadAll(ctxT(t), res.FirstSequence, func(jetstore.RecordedEvent) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Append(ctxT(t), agg, 0, newEvents(2, "Conflict")); !errors.Is(err, jetstore.ErrConcurrency) {
			t.Fatalf("conflict: %v", err)
		}
		// Breaking out of a read early must release it too.
		for _, err := range st.All(ctxT(t), res.FirstSequence) {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	serverAfter, streamAfter := consumers(t, e)
	if serverAfter != serverBefore || streamAfter != streamBefore {
		t.Fatalf("consumers: server %d -> %d, stream %d -> %d", serverBefore, serverAfter, streamBefore, streamAfter)
	}
	if subs := nc.NumSubscriptions(); subs != subsBefore {
		t.Fatalf("client subscriptions: %d -> %d", subsBefore, subs)
	}
}

func testReadAll(t *testing.T, e env) {
	st := e.Store
	from, err := st.LastSequence(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	want := make(map[jetstore.AggregateRef][]jetstore.Event)
	var last map[jetstore.AggregateRef]uint64 = map[jetstore.AggregateRef]uint64{}
	aggs := []jetstore.AggregateRef{newAgg(t), newAgg(t), newAgg(t)}
	for round := range 4 {
		for _, agg := range aggs {
			evs := newEvents(round%2+1, "Projected")
			last[agg] = mustAppend(t, st, agg, last[agg], evs).LastSequence
			want[agg] = append(want[agg], evs...)
		}
	}
	head, err := st.LastSequence(ctxT(t))
	if err != nil || head < from+12 {
		t.Fatalf("LastSequence %d (from %d), %v", head, from, err)
	}
	got := make(map[jetstore.AggregateRef][]jetstore.RecordedEvent)
	var prev uint64
	err = st.ReadAll(ctxT(t), from+1, func(ev jetstore.RecordedEvent) error {
		if ev.Sequence <= prev || ev.Sequence <= from {
			return fmt.Errorf("sequence %d after %d (from %d)", ev.Sequence, prev, from)
		}
		prev = ev.Sequence
		if ev.Aggregate.Type == aggs[0].Type {
			got[ev.Aggregate] = append(got[ev.Aggregate], ev)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if prev < head {
		t.Fatalf("ReadAll stopped at %d before the head %d", prev, head)
	}
	for _, agg := range aggs {
		sameEvents(t, got[agg], want[agg])
	}
	stop := errors.New("stop")
	var n int
	err = st.ReadAll(ctxT(t), from+1, func(jetstore.RecordedEvent) error {
		if n++; n == 5 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 5 {
		t.Fatalf("stopping ReadAll: %v after %d events", err, n)
	}
	n = 0
	if err := st.ReadAll(ctxT(t), head+1_000_000, func(jetstore.RecordedEvent) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("ReadAll past the head: %d events, %v", n, err)
	}
}

func testEnsureStream(t *testing.T, e env) {
	ctx := ctxT(t)
	if err := e.Store.EnsureStream(ctx); err != nil {
		t.Fatalf("EnsureStream on the existing stream: %v", err)
	}
	base := jetstream.StreamConfig{
		Storage: jetstream.FileStorage, Replicas: e.Replicas, AllowDirect: true, AllowAtomicPublish: true,
		DenyDelete: true, DenyPurge: true, Duplicates: 2 * time.Minute,
	}
	asyncWant := []string{"persist mode is async", "allow_atomic is false"}
	if e.Replicas != 1 {
		asyncWant = append(asyncWant, "replicas is 1")
	}
	cases := []struct {
		name   string
		change func(*jetstream.StreamConfig)
		want   []string
	}{
		{"memory", func(c *jetstream.StreamConfig) { c.Storage = jetstream.MemoryStorage }, []string{"storage is memory"}},
		{"async", func(c *jetstream.StreamConfig) {
			// The server refuses async persistence on replicated streams: make this one R1.
			c.PersistMode, c.AllowAtomicPublish, c.Replicas = jetstream.AsyncPersistMode, false, 1
		}, asyncWant},
		{"permissive", func(c *jetstream.StreamConfig) {
			c.AllowDirect, c.DenyDelete, c.DenyPurge = false, false, false
		}, []string{"allow_direct is false", "deny_delete is false", "deny_purge is false"}},
		{"limits", func(c *jetstream.StreamConfig) {
			c.MaxAge, c.MaxMsgsPerSubject, c.Duplicates = time.Hour, 10, time.Second
		}, []string{"max_age", "max_msgs_per_subject", "duplicates window"}},
		{"subjects", func(c *jetstream.StreamConfig) { c.Subjects = []string{"PREFIX.order.*"} }, []string{"do not cover"}},
	}
	for _, c := range cases {
		name := fmt.Sprintf("BAD_%s_%d", strings.ToUpper(c.name), unique.Add(1))
		prefix := strings.ToLower(name)
		cfg := base
		cfg.Name, cfg.Subjects = name, []string{prefix + ".>"}
		c.change(&cfg)
		for i, s := range cfg.Subjects {
			cfg.Subjects[i] = strings.Replace(s, "PREFIX", prefix, 1)
		}
		if _, err := e.JS.CreateStream(ctx, cfg); err != nil {
			t.Fatalf("%s: create: %v", c.name, err)
		}
		st, err := jetstore.New(e.JS, jetstore.Config{Stream: name, SubjectPrefix: prefix, Replicas: e.Replicas})
		if err != nil {
			t.Fatal(err)
		}
		err = st.EnsureStream(ctx)
		var serr *jetstore.IncompatibleStreamError
		if !errors.Is(err, jetstore.ErrIncompatibleStream) || !errors.As(err, &serr) {
			t.Fatalf("%s: %v, want ErrIncompatibleStream", c.name, err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not name %q", c.name, err, w)
			}
		}
		if len(serr.Problems) != len(c.want) {
			t.Errorf("%s: problems %q, want %d", c.name, serr.Problems, len(c.want))
		}
		if err := e.JS.DeleteStream(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	other := 1
	if e.Replicas == 1 {
		other = 3
	}
	st, err := jetstore.New(e.JS, jetstore.Config{Stream: e.Store.Config().Stream, Replicas: other})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureStream(ctx); !errors.Is(err, jetstore.ErrIncompatibleStream) || !strings.Contains(err.Error(), "replicas") {
		t.Fatalf("replica mismatch: %v", err)
	}
}
