package commandservice

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

// randomAggregate folds a random history of n commands (several kinds, repeated values,
// commands of several events) into an aggregate, as the cache does after appends.
func randomAggregate(t testing.TB, seed uint64, n int) aggregate {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	id := uuid.NewSHA1(uuid.NameSpaceOID, fmt.Append(nil, "agg", seed))
	pick := func(kind string, k int) uuid.UUID { return uuid.NewSHA1(id, fmt.Append(nil, kind, rng.IntN(k))) }
	var a aggregate
	seq := uint64(rng.IntN(1000))
	ts := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	for i := range n {
		m := cr.CommandMeta{CommandID: uuid.NewSHA1(id, fmt.Append(nil, "cmd", i)), Timestamp: ts.Add(time.Duration(i) * time.Second)}
		var cmd cr.Command
		switch k := rng.IntN(6); {
		case i == 0:
			cmd = cr.RegisterResource{Meta: m, ID: id, Hostname: mustHostname(t, "host-1"), Type: cr.ResourceTypes()[rng.IntN(5)]}
		case k == 0:
			cmd = cr.AddPolicy{Meta: m, ID: id, PolicyID: cr.PolicyID(pick("policy", 8))}
		case k == 1:
			cmd = cr.RemovePolicy{Meta: m, ID: id, PolicyID: cr.PolicyID(pick("policy", 8))}
		case k == 2:
			cmd = cr.UpdateMetadata{Meta: m, ID: id, Key: fmt.Sprint("k", rng.IntN(4)), Value: fmt.Sprint("v", rng.IntN(3))}
		case k == 3:
			v := fmt.Sprint("model-", rng.IntN(3))
			cmd = cr.SetHardwareDetails{Meta: m, ID: id, Model: &v, SerialNumber: &v}
		case k == 4:
			cmd = cr.ChangeStatus{Meta: m, ID: id, To: []cr.Status{cr.StatusActive, cr.StatusMaintenance}[rng.IntN(2)]}
		default:
			cmd = cr.AssignOrganization{Meta: m, ID: id, OrganizationID: cr.OrganizationID(pick("org", 3))}
		}
		events, err := cr.Decide(a.state, cmd)
		if err != nil || len(events) == 0 {
			continue
		}
		for _, e := range events {
			seq += 1 + uint64(rng.IntN(50))
			a.record(e, seq)
		}
	}
	return a
}

func mustHostname(t testing.TB, s string) cr.Hostname {
	t.Helper()
	h, err := cr.ParseHostname(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// equalAggregates compares everything a snapshot carries.
func equalAggregates(a, b aggregate) error {
	switch {
	case !a.state.Equal(b.state):
		return fmt.Errorf("state differs")
	case a.lastSeq != b.lastSeq || a.lastEventID != b.lastEventID:
		return fmt.Errorf("last event %d %s, want %d %s", a.lastSeq, a.lastEventID, b.lastSeq, b.lastEventID)
	case !slices.Equal(a.events, b.events):
		return fmt.Errorf("events differ")
	case !maps.Equal(a.written, b.written):
		return fmt.Errorf("command index differs")
	case !maps.Equal(a.everHeld, b.everHeld):
		return fmt.Errorf("held values differ")
	case len(a.scattered) != len(b.scattered):
		return fmt.Errorf("%d scattered results, want %d", len(a.scattered), len(b.scattered))
	}
	for id, r := range a.scattered {
		if o, ok := b.scattered[id]; !ok || o.version != r.version || !slices.Equal(o.events, r.events) {
			return fmt.Errorf("scattered result of %s differs", id)
		}
	}
	return nil
}

// TestSnapshotEncodingRoundTrip: an aggregate decodes from its snapshot to the same state,
// command index, held values and scattered results, for random histories.
func TestSnapshotEncodingRoundTrip(t *testing.T) {
	t.Parallel()
	for seed := range uint64(50) {
		a := randomAggregate(t, seed, 5+int(seed)*4)
		if seed%5 == 0 {
			// The rare layout: a command whose events are not contiguous.
			a.scattered = map[uuid.UUID]commandResult{uuid.New(): {version: a.lastSeq, events: []api.EventRef{
				{Type: cr.EventTypeMetadataUpdated, ID: uuid.NewString(), Sequence: 3}, {Type: cr.EventTypeStatusChanged, ID: uuid.NewString(), Sequence: 9}}}}
		}
		a.snapSeq = 7 // not carried
		data, err := a.marshalSnapshot(42)
		if err != nil {
			t.Fatal(err)
		}
		got, stream, err := unmarshalSnapshot(data)
		if err != nil || stream != 42 {
			t.Fatalf("seed %d: stream %d, %v", seed, stream, err)
		}
		if err := equalAggregates(got, a); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if got.snapSeq != 0 {
			t.Fatalf("seed %d: snapSeq %d decoded, want none", seed, got.snapSeq)
		}
		// A retry of every command of the history is recognised on the decoded aggregate.
		for id := range a.written {
			want, _ := a.result(id)
			r, ok := got.result(id)
			if !ok || r.version != want.version || !slices.Equal(r.events, want.events) {
				t.Fatalf("seed %d: result of command %s lost", seed, id)
			}
		}
	}
}

// TestSnapshotEncodingRefusesCorruption: every truncation and trailing data is an error.
func TestSnapshotEncodingRefusesCorruption(t *testing.T) {
	t.Parallel()
	a := randomAggregate(t, 3, 40)
	a.scattered = map[uuid.UUID]commandResult{uuid.New(): {version: a.lastSeq, events: []api.EventRef{{Type: "T", ID: "i", Sequence: 1}}}}
	data, err := a.marshalSnapshot(42)
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(data) {
		if _, _, err := unmarshalSnapshot(data[:n]); err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error", n, len(data))
		}
	}
	if _, _, err := unmarshalSnapshot(append(bytes.Clone(data), 0)); err == nil {
		t.Fatal("trailing byte: no error")
	}
	bad := bytes.Clone(data)
	bad[0] = 9
	if _, _, err := unmarshalSnapshot(bad); err == nil {
		t.Fatal("format 9: no error")
	}
	var empty aggregate
	if data, err := empty.marshalSnapshot(42); err != nil {
		t.Fatal(err)
	} else if _, _, err := unmarshalSnapshot(data); err == nil {
		t.Fatal("snapshot of an aggregate without events: no error")
	}
}

func FuzzUnmarshalSnapshot(f *testing.F) {
	for seed := range uint64(5) {
		a := randomAggregate(f, seed, 30)
		data, err := a.marshalSnapshot(42)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, stream, err := unmarshalSnapshot(data)
		if err != nil {
			return
		}
		// Whatever decodes is consistent: every command's run lies within the events.
		for id := range a.written {
			if _, ok := a.result(id); !ok {
				t.Fatalf("command %s indexed but no result", id)
			}
		}
		again, err := a.marshalSnapshot(stream)
		if err != nil {
			t.Fatal(err)
		}
		b, stream2, err := unmarshalSnapshot(again)
		if err != nil || stream2 != stream {
			t.Fatalf("re-decoding: %v", err)
		}
		if err := equalAggregates(b, a); err != nil {
			t.Fatal(err)
		}
	})
}

// snapshotReads returns the instance's snapshot read counter for an outcome.
func (in *instance) snapshotReads(outcome string) float64 {
	return testutil.ToFloat64(in.svc.snaps.reads.WithLabelValues(outcome))
}

func (in *instance) snapshotWrites(outcome string) float64 {
	return testutil.ToFloat64(in.svc.snaps.writes.WithLabelValues(outcome))
}

// waitSnapshotWrites waits until the instance has written n snapshots (they are written in the
// background).
func waitSnapshotWrites(t testing.TB, in *instance, n float64) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for in.snapshotWrites(SnapshotWritten) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%v snapshots written, want %v (errors %v, dropped %v)", in.snapshotWrites(SnapshotWritten), n,
				in.snapshotWrites(SnapshotError), in.snapshotWrites(SnapshotDropped))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestEvictedAggregatesLoadFromSnapshots runs commands over more resources than the cache
// holds, on R1 and R3: every miss after the first visit loads from a snapshot, the state is
// the fold of the stream, and every earlier command id is still recognised as a retry (its
// original result, nothing written).
func TestEvictedAggregatesLoadFromSnapshots(t *testing.T) {
	t.Parallel()
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			t.Parallel()
			url := topo.url(t)
			ctx := testCtx(t)
			st := testStore(t, url, topo.replicas)
			in := startInstance(t, url, withReplicas(topo.replicas), withOptions(func(o *Options) { o.CacheSize = 2 }))
			c := newClient(t, url)

			const resources, rounds = 6, 4
			ids := make([]string, resources)
			type sent struct {
				id    string
				cmd   api.AddPolicy
				reply *api.CommandReply
			}
			var history []sent
			for i := range ids {
				r, err := c.Register(ctx, api.Register{Hostname: fmt.Sprintf("snap-%d", i), ResourceType: "vm"})
				if err != nil {
					t.Fatal(err)
				}
				ids[i] = r.AggregateID
			}
			for round := range rounds {
				for _, id := range ids {
					cmd := api.AddPolicy{Target: api.Target{Envelope: api.Envelope{CommandID: newID()}, AggregateID: id}, PolicyID: newID()}
					r, err := c.AddPolicy(ctx, cmd)
					if err != nil {
						t.Fatal(err)
					}
					history = append(history, sent{id, cmd, r})
					if _, err := c.UpdateMetadata(ctx, api.UpdateMetadata{Target: api.Target{AggregateID: id}, Key: "round", Value: fmt.Sprint(round)}); err != nil {
						t.Fatal(err)
					}
				}
			}
			// Each visit after a resource's first evicted it; the snapshots are written in the
			// background, so wait for them before counting the reads.
			waitSnapshotWrites(t, in, 1)
			if hits := in.snapshotReads(SnapshotHit); hits == 0 {
				t.Fatalf("no miss loaded from a snapshot (none %v, ignored %v, errors %v)", in.snapshotReads(SnapshotNone),
					in.snapshotReads(SnapshotIgnored), in.snapshotReads(SnapshotError))
			}
			if n := in.snapshotReads(SnapshotIgnored) + in.snapshotReads(SnapshotError); n != 0 {
				t.Fatalf("%v snapshot reads ignored or failed", n)
			}

			// Retries of every earlier command: the original result, nothing written.
			for _, h := range history {
				r, err := c.AddPolicy(ctx, h.cmd)
				if err != nil {
					t.Fatal(err)
				}
				if !r.Duplicate || r.Version != h.reply.Version || !slices.Equal(r.Events, h.reply.Events) {
					t.Fatalf("retry of %s got %+v, want the original %+v", h.cmd.CommandID, r, h.reply)
				}
			}
			// Every resource's state is the fold of its stored history, and each command wrote once.
			for _, id := range ids {
				events := eventsOf(t, st, id)
				want, err := resourcestore.FoldStored(cr.State{}, events)
				if err != nil {
					t.Fatal(err)
				}
				got, err := c.Get(ctx, api.Get{AggregateID: id})
				if err != nil {
					t.Fatal(err)
				}
				if got.Version != events[len(events)-1].Sequence || len(got.Policies) != len(want.Policies()) || got.Metadata["round"] != fmt.Sprint(rounds-1) {
					t.Fatalf("resource %s: %+v, want version %d, %d policies", id, got, events[len(events)-1].Sequence, len(want.Policies()))
				}
				for cmdID, evs := range eventsByCommand(events) {
					if len(evs) != 1 {
						t.Fatalf("command %s wrote %d events", cmdID, len(evs))
					}
				}
			}
		})
	}
}

// TestSnapshotBehindStreamReadsTail: another instance appends after the snapshot was written;
// the instance that loads the snapshot folds the newer events too. Then a snapshot that does
// not match the stream (its last event id differs) is ignored and the whole history read.
func TestSnapshotBehindStreamReadsTail(t *testing.T) {
	t.Parallel()
	url := natstest.RunServer(t).ClientURL()
	ctx := testCtx(t)
	a := startInstance(t, url, withOptions(func(o *Options) { o.CacheSize = 1 }))
	c := newClient(t, url)
	r, err := c.Register(ctx, api.Register{Hostname: "behind", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	id := r.AggregateID
	if _, err := c.UpdateMetadata(ctx, api.UpdateMetadata{Target: api.Target{AggregateID: id}, Key: "k", Value: "a"}); err != nil {
		t.Fatal(err)
	}
	// Another resource evicts the first from a's cache: its snapshot is written.
	other, err := c.Register(ctx, api.Register{Hostname: "other", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	waitSnapshotWrites(t, a, 1)
	snaps, err := jetstore.OpenSnapshotStore(snapshotBucket(t, url))
	if err != nil {
		t.Fatal(err)
	}
	ref := resourcestore.Ref(mustUUID(t, id))
	stale, err := snaps.Get(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}

	// Instance b, without snapshots, writes after the snapshot; it is stopped so that the
	// next requests reach a.
	b := startInstance(t, url, withOptions(func(o *Options) { o.NoSnapshots = true }))
	stopServing(t, a) // only b answers now
	moved, err := c.UpdateMetadata(ctx, api.UpdateMetadata{Target: api.Target{AggregateID: id}, Key: "k", Value: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.svc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := snaps.Get(ctx, ref); err != nil || got.Sequence != stale.Sequence {
		t.Fatalf("snapshot at %d (%v), want the one at %d", got.Sequence, err, stale.Sequence)
	}
	a2 := startInstance(t, url, withOptions(func(o *Options) { o.CacheSize = 1 })) // a's micro service is stopped
	got, err := c.Get(ctx, api.Get{AggregateID: id})
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != moved.Version || got.Metadata["k"] != "b" {
		t.Fatalf("after loading the older snapshot: version %d, k=%q; want %d, \"b\"", got.Version, got.Metadata["k"], moved.Version)
	}
	if hits := a2.snapshotReads(SnapshotHit); hits != 1 {
		t.Fatalf("%v snapshot hits, want 1", hits)
	}

	// A snapshot whose last event is not the stream's event at that sequence is ignored.
	agg, stream, err := unmarshalSnapshot(stale.State)
	if err != nil {
		t.Fatal(err)
	}
	agg.lastEventID = uuid.New()
	agg.state = cr.State{}
	data, err := agg.marshalSnapshot(stream)
	if err == nil {
		_, _, err = unmarshalSnapshot(data)
	}
	if err == nil {
		t.Fatal("a snapshot of an unregistered state decoded")
	}
	agg, _, _ = unmarshalSnapshot(stale.State)
	agg.lastEventID = uuid.New()
	agg.state = cr.Apply(agg.state, cr.MetadataUpdated{EventMeta: cr.EventMeta{EventID: agg.lastEventID, AggregateID: mustUUID(t, id)}, Key: "bogus", Value: "bogus"})
	data, err = agg.marshalSnapshot(stream)
	if err != nil {
		t.Fatal(err)
	}
	if err := snaps.Put(ctx, ref, jetstore.Snapshot{State: data, Sequence: stale.Sequence, SchemaVersion: snapshotSchema}); err != nil {
		t.Fatal(err)
	}
	a3 := startInstance(t, url, withOptions(func(o *Options) { o.CacheSize = 1 }))
	stopServing(t, a2)
	if _, err := c.Get(ctx, api.Get{AggregateID: other.AggregateID}); err != nil { // something else cached
		t.Fatal(err)
	}
	got, err = c.Get(ctx, api.Get{AggregateID: id})
	if err != nil {
		t.Fatal(err)
	}
	if _, bogus := got.Metadata["bogus"]; bogus || got.Version != moved.Version || got.Metadata["k"] != "b" {
		t.Fatalf("after ignoring the bad snapshot: version %d, k=%q; want %d, \"b\"", got.Version, got.Metadata["k"], moved.Version)
	}
	if n := a3.snapshotReads(SnapshotIgnored); n != 1 {
		t.Fatalf("%v snapshots ignored, want 1 (hits %v, none %v, errors %v)", n, a3.snapshotReads(SnapshotHit), a3.snapshotReads(SnapshotNone), a3.snapshotReads(SnapshotError))
	}

	// The same at the aggregate's last sequence (the path that reads no tail): ignored too.
	agg.lastSeq = moved.Version
	if data, err = agg.marshalSnapshot(stream); err != nil {
		t.Fatal(err)
	}
	if err := snaps.Put(ctx, ref, jetstore.Snapshot{State: data, Sequence: moved.Version, SchemaVersion: snapshotSchema}); err != nil {
		t.Fatal(err)
	}
	a4 := startInstance(t, url, withOptions(func(o *Options) { o.CacheSize = 1 }))
	stopServing(t, a3)
	got, err = c.Get(ctx, api.Get{AggregateID: id})
	if err != nil {
		t.Fatal(err)
	}
	if _, bogus := got.Metadata["bogus"]; bogus || got.Version != moved.Version || got.Metadata["k"] != "b" {
		t.Fatalf("after ignoring the bad current snapshot: %+v", got)
	}
	if n := a4.snapshotReads(SnapshotIgnored); n != 1 {
		t.Fatalf("%v current snapshots ignored, want 1", n)
	}
}

// TestShutdownWritesSnapshots: stopping an instance writes the snapshots of the aggregates it
// cached and changed, and the next instance loads them from there.
func TestShutdownWritesSnapshots(t *testing.T) {
	t.Parallel()
	url := natstest.RunServer(t).ClientURL()
	ctx := testCtx(t)
	a := startInstance(t, url)
	c := newClient(t, url)
	var ids []string
	for i := range 5 {
		r, err := c.Register(ctx, api.Register{Hostname: fmt.Sprint("down-", i), ResourceType: "vm"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.AggregateID)
	}
	if err := a.svc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := a.snapshotWrites(SnapshotWritten); n != 5 {
		t.Fatalf("%v snapshots written on shutdown, want 5", n)
	}
	b := startInstance(t, url)
	for _, id := range ids {
		if _, err := c.Get(ctx, api.Get{AggregateID: id}); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.snapshotReads(SnapshotHit); n != 5 {
		t.Fatalf("%v loads from snapshots, want 5", n)
	}
	// Unchanged since, they are not written again.
	if err := b.svc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := b.snapshotWrites(SnapshotWritten); n != 0 {
		t.Fatalf("%v snapshots written for aggregates unchanged since their snapshot", n)
	}
}

func snapshotBucket(t testing.TB, url string) jetstream.KeyValue {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(context.Background(), DefaultSnapshotBucket)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// TestPrimeSnapshots writes histories without snapshots, primes the bucket from the stream in
// several passes, and checks that a new instance loads every aggregate from its snapshot with
// its state and its command-id index (every earlier command is a duplicate).
func TestPrimeSnapshots(t *testing.T) {
	t.Parallel()
	url := natstest.RunServer(t).ClientURL()
	ctx := testCtx(t)
	a := startInstance(t, url, withOptions(func(o *Options) { o.NoSnapshots = true }))
	c := newClient(t, url)
	const resources = 10
	var ids []string
	var sent []api.AddPolicy
	var replies []*api.CommandReply
	for i := range resources {
		r, err := c.Register(ctx, api.Register{Hostname: fmt.Sprint("prime-", i), ResourceType: "vm"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.AggregateID)
	}
	for round := range 3 {
		for _, id := range ids {
			cmd := api.AddPolicy{Target: api.Target{Envelope: api.Envelope{CommandID: newID()}, AggregateID: id}, PolicyID: newID()}
			r, err := c.AddPolicy(ctx, cmd)
			if err != nil {
				t.Fatal(err)
			}
			sent, replies = append(sent, cmd), append(replies, r)
			_ = round
		}
	}
	if err := a.svc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(natstest.Connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	var reports []PrimeProgress
	res, err := PrimeSnapshots(ctx, js, jetstore.Config{}, PrimeOptions{MaxAggregates: 3, Progress: func(p PrimeProgress) { reports = append(reports, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Passes != 4 || res.Written != resources || res.EventsRead != 4*resources*4 {
		t.Fatalf("primed %+v, want 4 passes of %d events writing %d snapshots", res, 4*resources, resources)
	}
	if len(reports) != 4 || reports[3].Written != resources {
		t.Fatalf("progress reports %+v", reports)
	}

	b := startInstance(t, url)
	for i, cmd := range sent {
		r, err := c.AddPolicy(ctx, cmd)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Duplicate || r.Version != replies[i].Version || !slices.Equal(r.Events, replies[i].Events) {
			t.Fatalf("retry of %s: %+v, want the original %+v", cmd.CommandID, r, replies[i])
		}
	}
	if hits := b.snapshotReads(SnapshotHit); hits != resources {
		t.Fatalf("%v loads from snapshots, want %d (none %v, ignored %v)", hits, resources, b.snapshotReads(SnapshotNone), b.snapshotReads(SnapshotIgnored))
	}
	for _, id := range ids {
		got, err := c.Get(ctx, api.Get{AggregateID: id})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Policies) != 3 {
			t.Fatalf("%s has %d policies, want 3", id, len(got.Policies))
		}
	}
}

// TestRunPrimeSnapshots: -prime-snapshots writes the snapshots and returns without serving.
func TestRunPrimeSnapshots(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	ctx := testCtx(t)
	a := startInstance(t, srv.ClientURL(), withOptions(func(o *Options) { o.NoSnapshots = true }))
	c := newClient(t, srv.ClientURL())
	for i := range 3 {
		if _, err := c.Register(ctx, api.Register{Hostname: fmt.Sprint("run-prime-", i), ResourceType: "vm"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.svc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.NATS.URL = srv.ClientURL()
	cfg.PrimeSnapshots = true
	if err := Run(ctx, cfg, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	keys, err := snapshotBucket(t, srv.ClientURL()).ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range keys.Keys() {
		n++
	}
	if n != 3 {
		t.Fatalf("%d snapshots in the bucket, want 3", n)
	}
}

// stopServing unsubscribes the instance's endpoints and waits until the server has them gone,
// so that the next request (sent on another connection) cannot reach it.
func stopServing(t testing.TB, in *instance) {
	t.Helper()
	if err := in.svc.micro.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := in.nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestStaleSnapshotForCommands: a command is decided on a snapshot without checking the
// stream first; when another instance wrote since, a refusal on the stale state is not
// reported (the tail is read and the command decided again) and an append on it conflicts and
// is retried on the refreshed state.
func TestStaleSnapshotForCommands(t *testing.T) {
	t.Parallel()
	url := natstest.RunServer(t).ClientURL()
	ctx := testCtx(t)
	c := newClient(t, url)
	small := withOptions(func(o *Options) { o.CacheSize = 1 })

	a := startInstance(t, url, small)
	x, err := c.Register(ctx, api.Register{Hostname: "stale-x", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	y, err := c.Register(ctx, api.Register{Hostname: "stale-y", ResourceType: "vm"}) // evicts x: snapshot
	if err != nil {
		t.Fatal(err)
	}
	waitSnapshotWrites(t, a, 1)
	stopServing(t, a)
	// Another instance, without snapshots, adds a policy to x.
	b := startInstance(t, url, withOptions(func(o *Options) { o.NoSnapshots = true }))
	first := newID()
	if _, err := c.AddPolicy(ctx, api.AddPolicy{Target: api.Target{AggregateID: x.AggregateID}, PolicyID: first}); err != nil {
		t.Fatal(err)
	}
	stopServing(t, b)

	// Removing it is refused on the snapshot's state (no such policy), allowed now.
	a2 := startInstance(t, url, small)
	r, err := c.RemovePolicy(ctx, api.RemovePolicy{Target: api.Target{AggregateID: x.AggregateID}, PolicyID: first})
	if err != nil {
		t.Fatalf("a command refused on a stale snapshot's state: %v", err)
	}
	if len(r.Events) != 1 || a2.snapshotReads(SnapshotHit) != 1 {
		t.Fatalf("reply %+v, %v snapshot hits; want one event from a snapshot", r, a2.snapshotReads(SnapshotHit))
	}
	// a2 evicts x (snapshot at r.Version); then another instance writes x again.
	if _, err := c.Get(ctx, api.Get{AggregateID: y.AggregateID}); err != nil {
		t.Fatal(err)
	}
	waitSnapshotWrites(t, a2, 1)
	stopServing(t, a2)
	b2 := startInstance(t, url, withOptions(func(o *Options) { o.NoSnapshots = true }))
	moved, err := c.AddPolicy(ctx, api.AddPolicy{Target: api.Target{AggregateID: x.AggregateID}, PolicyID: newID()})
	if err != nil {
		t.Fatal(err)
	}
	stopServing(t, b2)

	// A command that the stale state allows: its append conflicts, the tail is read, retried.
	a3 := startInstance(t, url, small)
	policy := newID()
	r, err = c.AddPolicy(ctx, api.AddPolicy{Target: api.Target{AggregateID: x.AggregateID}, PolicyID: policy})
	if err != nil {
		t.Fatal(err)
	}
	if r.Version <= moved.Version || r.Duplicate {
		t.Fatalf("reply %+v after the other instance's write at %d", r, moved.Version)
	}
	if n := a3.counter(t, a3.svc.metrics.conflicts); n != 1 {
		t.Fatalf("%v conflicts, want 1 (the append on the stale snapshot)", n)
	}
	got, err := c.Get(ctx, api.Get{AggregateID: x.AggregateID})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Policies) != 2 || got.Version != r.Version {
		t.Fatalf("resource %+v, want 2 policies at %d", got, r.Version)
	}
}

// TestSnapshotOfAnotherStreamIgnored: a snapshot stamped with another incarnation of the
// stream (a stream deleted and created again under the same name, the bucket kept) is not
// used, even by a command, which does not check the stream before deciding.
func TestSnapshotOfAnotherStreamIgnored(t *testing.T) {
	t.Parallel()
	url := natstest.RunServer(t).ClientURL()
	ctx := testCtx(t)
	c := newClient(t, url)
	a := startInstance(t, url)
	x, err := c.Register(ctx, api.Register{Hostname: "incarnation", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.svc.Shutdown(ctx); err != nil { // writes x's snapshot
		t.Fatal(err)
	}
	snaps, err := jetstore.OpenSnapshotStore(snapshotBucket(t, url))
	if err != nil {
		t.Fatal(err)
	}
	ref := resourcestore.Ref(mustUUID(t, x.AggregateID))
	snap, err := snaps.Get(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	agg, stream, err := unmarshalSnapshot(snap.State)
	if err != nil {
		t.Fatal(err)
	}
	if snap.State, err = agg.marshalSnapshot(stream + 1); err != nil {
		t.Fatal(err)
	}
	if err := snaps.Put(ctx, ref, snap); err != nil {
		t.Fatal(err)
	}
	b := startInstance(t, url)
	if _, err := c.AddPolicy(ctx, api.AddPolicy{Target: api.Target{AggregateID: x.AggregateID}, PolicyID: newID()}); err != nil {
		t.Fatal(err)
	}
	if ignored, hits := b.snapshotReads(SnapshotIgnored), b.snapshotReads(SnapshotHit); ignored != 1 || hits != 0 {
		t.Fatalf("%v snapshots ignored and %v used, want 1 and 0", ignored, hits)
	}
}
