package jetstore_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cim-infra/registry/pkg/jetstore"
)

// keySpace is a key space of the running case alone.
func keySpace(t *testing.T) string { return aggType(t) }

func mustKey(t *testing.T, st *jetstore.Store, space, key string) jetstore.KeyHolder {
	t.Helper()
	h, err := st.Key(ctxT(t), space, key)
	if err != nil {
		t.Fatalf("Key(%s, %q): %v", space, key, err)
	}
	return h
}

func heldBy(t *testing.T, st *jetstore.Store, space, key string, holder jetstore.AggregateRef) jetstore.KeyHolder {
	t.Helper()
	h := mustKey(t, st, space, key)
	if !h.Held || h.Aggregate != holder {
		t.Fatalf("key %s %q: %+v, want held by %v", space, key, h, holder)
	}
	return h
}

func keyTaken(t *testing.T, err error, holder jetstore.AggregateRef) {
	t.Helper()
	var kerr *jetstore.KeyTakenError
	if !errors.As(err, &kerr) || !errors.Is(err, jetstore.ErrKeyTaken) || errors.Is(err, jetstore.ErrConcurrency) {
		t.Fatalf("%v, want only a *KeyTakenError", err)
	}
	if kerr.Holder != holder {
		t.Fatalf("%v: holder %v, want %v", err, kerr.Holder, holder)
	}
}

// testKeyClaims: a claim goes with the events, atomically; a key held by another aggregate is
// a *KeyTakenError and nothing is written; a release frees it for another; Key says who holds
// it; keys of any content are distinct.
func testKeyClaims(t *testing.T, e env) {
	st, space := e.Store, keySpace(t)
	a, b := newAgg(t), newAgg(t)
	for _, key := range []string{"web-01.example.com", "WEB-01.example.com", "*", ">", "a b", "é/ü", "cim.key.x", strings.Repeat("k", jetstore.MaxKeyLength)} {
		if h := mustKey(t, st, space, key); h.Held || h.Sequence != 0 {
			t.Fatalf("key %q before any claim: %+v", key, h)
		}
		subject, err := st.KeySubject(space, key)
		if err != nil || len(strings.Split(subject, ".")) != 4 {
			t.Fatalf("KeySubject(%q) = %q, %v: want 4 tokens", key, subject, err)
		}
	}

	claim := mustAppendKeys(t, st, a, 0, newEvents(1, "Registered"), jetstore.Claim(space, "web-01.example.com"), jetstore.Claim(space, "*"))
	if h := heldBy(t, st, space, "web-01.example.com", a); h.Sequence != claim.LastSequence+1 {
		t.Fatalf("claim at sequence %d, want %d (after the event)", h.Sequence, claim.LastSequence+1)
	}
	heldBy(t, st, space, "*", a)
	// Keys are compared byte for byte: another case is another key.
	mustAppendKeys(t, st, b, 0, newEvents(1, "Registered"), jetstore.Claim(space, "WEB-01.example.com"))
	heldBy(t, st, space, "WEB-01.example.com", b)

	// A key held by another aggregate: refused, nothing written, on single events and batches.
	bLast := mustLoad(t, st, b).LastSequence
	for _, n := range []int{1, 3} {
		_, err := st.Append(ctxT(t), b, bLast, newEvents(n, "Renamed"), jetstore.Claim(space, "web-01.example.com"))
		keyTaken(t, err, a)
	}
	if l := mustLoad(t, st, b); l.LastSequence != bLast {
		t.Fatalf("refused claims wrote: last %d, want %d", l.LastSequence, bLast)
	}
	heldBy(t, st, space, "web-01.example.com", a)

	// Claiming a key one holds already, and releasing one not held, write no key message.
	res := mustAppendKeys(t, st, a, claim.LastSequence, newEvents(1, "Touched"), jetstore.Claim(space, "*"), jetstore.Release(space, "never-claimed"))
	if h := mustKey(t, st, space, "never-claimed"); h.Held || h.Sequence != 0 {
		t.Fatalf("release of a key never claimed wrote %+v", h)
	}
	if h := heldBy(t, st, space, "*", a); h.Sequence > res.LastSequence {
		t.Fatalf("claim of a key already held wrote at %d", h.Sequence)
	}
	// b's release of a's key leaves it with a.
	bLast = mustAppendKeys(t, st, b, bLast, newEvents(1, "Touched"), jetstore.Release(space, "web-01.example.com")).LastSequence
	heldBy(t, st, space, "web-01.example.com", a)

	// a releases it (with a batch of events); then b may claim it.
	rel := mustAppendKeys(t, st, a, res.LastSequence, newEvents(2, "Decommissioned"), jetstore.Release(space, "web-01.example.com"))
	if h := mustKey(t, st, space, "web-01.example.com"); h.Held || h.Sequence != rel.LastSequence+1 {
		t.Fatalf("after release: %+v, want free since %d", h, rel.LastSequence+1)
	}
	mustAppendKeys(t, st, b, bLast, newEvents(1, "Renamed"), jetstore.Claim(space, "web-01.example.com"))
	heldBy(t, st, space, "web-01.example.com", b)
}

// testKeyConflictToldApart: an aggregate behind its expected sequence is a *ConcurrencyError,
// not a key conflict, and its claims are not written; also when a key it claims is held by
// another aggregate (deciding again on the aggregate's state may claim no key at all).
func testKeyConflictToldApart(t *testing.T, e env) {
	st, space, agg := e.Store, keySpace(t), newAgg(t)
	mustAppend(t, st, agg, 0, newEvents(1, "Created"))
	holder := newAgg(t)
	mustAppendKeys(t, st, holder, 0, newEvents(1, "Created"), jetstore.Claim(space, "held"))
	aggLast := mustAppend(t, st, agg, mustLoad(t, st, agg).LastSequence, newEvents(1, "Decommissioned")).LastSequence
	for _, stale := range []uint64{0, aggLast - 1} {
		_, err := st.Append(ctxT(t), agg, stale, newEvents(1, "Tagged"), jetstore.Claim(space, "held"))
		var cerr *jetstore.ConcurrencyError
		if !errors.As(err, &cerr) || errors.Is(err, jetstore.ErrKeyTaken) || cerr.Actual != aggLast {
			t.Fatalf("expecting %d, a claim of a key held by another: %v, want only a *ConcurrencyError at %d", stale, err, aggLast)
		}
	}
	// At the expected sequence, the same claim is the key's conflict.
	_, err := st.Append(ctxT(t), agg, aggLast, newEvents(1, "Tagged"), jetstore.Claim(space, "held"))
	keyTaken(t, err, holder)
	for _, n := range []int{1, 2} {
		_, err := st.Append(ctxT(t), agg, 0, newEvents(n, "Late"), jetstore.Claim(space, "free"))
		var cerr *jetstore.ConcurrencyError
		if !errors.As(err, &cerr) || errors.Is(err, jetstore.ErrKeyTaken) {
			t.Fatalf("%d events: %v, want only a *ConcurrencyError", n, err)
		}
	}
	if h := mustKey(t, st, space, "free"); h.Held || h.Sequence != 0 {
		t.Fatalf("claims of refused appends were written: %+v", h)
	}
}

// testConcurrentClaims: aggregates racing for one key, round after round: exactly one wins each
// round, every other gets a *KeyTakenError naming it (never a concurrency conflict), and the
// key's holder is the winner.
func testConcurrentClaims(t *testing.T, e env) {
	const writers, rounds = 8, 4
	st, space := e.Store, keySpace(t)
	for round := range rounds {
		key := fmt.Sprint("contended-", round)
		aggs := make([]jetstore.AggregateRef, writers)
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for w := range writers {
			aggs[w] = newAgg(t)
			wg.Go(func() {
				_, errs[w] = st.Append(ctxT(t), aggs[w], 0, newEvents(1+w%2, "Registered"), jetstore.Claim(space, key))
			})
		}
		wg.Wait()
		winner := -1
		for w, err := range errs {
			if err == nil {
				if winner >= 0 {
					t.Fatalf("round %d: writers %d and %d both claimed %s", round, winner, w, key)
				}
				winner = w
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody claimed the key: %v", round, errs)
		}
		for w, err := range errs {
			if w != winner {
				keyTaken(t, err, aggs[winner])
				if l := mustLoad(t, st, aggs[w]); len(l.Events) != 0 {
					t.Fatalf("round %d: loser %d wrote %d events", round, w, len(l.Events))
				}
			}
		}
		heldBy(t, st, space, key, aggs[winner])
	}
}

// testKeyRetry: an append with claims retried after a lost reply, with the same expected
// sequence or after a reload, is the same write: Duplicate, the original sequences, the key
// unchanged.
func testKeyRetry(t *testing.T, e env) {
	st, space := e.Store, keySpace(t)
	for _, n := range []int{1, 3} {
		agg := newAgg(t)
		key := fmt.Sprint("retried-", n)
		evs := newEvents(n, "Registered")
		orig := mustAppendKeys(t, st, agg, 0, evs, jetstore.Claim(space, key), jetstore.Claim(space, key+"-tag"))
		before := heldBy(t, st, space, key, agg)
		for _, expected := range []uint64{0, orig.LastSequence} {
			res, err := st.Append(ctxT(t), agg, expected, evs, jetstore.Claim(space, key), jetstore.Claim(space, key+"-tag"))
			if err != nil || !res.Duplicate || res.FirstSequence != orig.FirstSequence || res.LastSequence != orig.LastSequence {
				t.Fatalf("%d events, retry with expected %d: %+v, %v; want duplicate of %+v", n, expected, res, err, orig)
			}
		}
		if h := heldBy(t, st, space, key, agg); h != before {
			t.Fatalf("retries changed the key: %+v, was %+v", h, before)
		}
		if l := mustLoad(t, st, agg); len(l.Events) != n {
			t.Fatalf("retries wrote: %d events", len(l.Events))
		}
	}
}

// testKeysAreNotEvents: ReadAll reads across key messages without yielding them (a key message
// would not decode as an event), and bad keys are refused before anything is sent.
func testKeysAreNotEvents(t *testing.T, e env) {
	st, space, agg := e.Store, keySpace(t), newAgg(t)
	evs := newEvents(2, "Registered")
	res := mustAppendKeys(t, st, agg, 0, evs[:1], jetstore.Claim(space, "k1"), jetstore.Claim(space, "k2"))
	mustAppendKeys(t, st, agg, res.LastSequence, evs[1:], jetstore.Release(space, "k1"))
	var got []jetstore.Event
	if err := st.ReadAll(ctxT(t), res.FirstSequence, func(ev jetstore.RecordedEvent) error {
		if ev.Aggregate == agg {
			got = append(got, ev.Event)
		}
		return nil
	}); err != nil {
		t.Fatalf("ReadAll over key messages: %v", err)
	}
	if len(got) != 2 || got[0].ID != evs[0].ID || got[1].ID != evs[1].ID {
		t.Fatalf("ReadAll: %d events of the aggregate, want its 2", len(got))
	}
	sameEvents(t, mustLoad(t, st, agg).Events, evs)

	long := strings.Repeat("k", jetstore.MaxKeyLength+1)
	for _, opts := range [][]jetstore.AppendOption{
		{jetstore.Claim(space, "")}, {jetstore.Claim(space, "a\nb")}, {jetstore.Claim(space, long)}, {jetstore.Claim(space, "\xff")},
		{jetstore.Claim("bad.space", "k")}, {jetstore.Claim("", "k")}, {jetstore.Claim(space, "k"), jetstore.Release(space, "k")},
	} {
		if _, err := st.Append(ctxT(t), newAgg(t), 0, newEvents(1, "Bad"), opts...); !errors.Is(err, jetstore.ErrInvalidKey) {
			t.Errorf("bad key: %v, want ErrInvalidKey", err)
		}
	}
	if _, err := st.Key(ctxT(t), space, ""); !errors.Is(err, jetstore.ErrInvalidKey) {
		t.Errorf("Key of an empty key: %v, want ErrInvalidKey", err)
	}
	noKeys, err := jetstore.New(e.JS, jetstore.Config{Replicas: e.Replicas})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noKeys.Append(ctxT(t), newAgg(t), 0, newEvents(1, "Bad"), jetstore.Claim(space, "k")); !errors.Is(err, jetstore.ErrKeysDisabled) {
		t.Errorf("claim without a key prefix: %v, want ErrKeysDisabled", err)
	}
	if _, err := noKeys.Key(ctxT(t), space, "k"); !errors.Is(err, jetstore.ErrKeysDisabled) {
		t.Errorf("Key without a key prefix: %v, want ErrKeysDisabled", err)
	}
	for _, prefix := range []string{"cim.evt", "cim.evt.keys", "cim", "a..b", "a.*"} {
		if _, err := jetstore.New(e.JS, jetstore.Config{KeyPrefix: prefix}); !errors.Is(err, jetstore.ErrInvalidConfig) {
			t.Errorf("key prefix %q: %v, want ErrInvalidConfig", prefix, err)
		}
	}
}

// testKeyUpgrade: a stream made before keys (events only) is refused by a store with keys,
// naming the key subjects; the operator adds them to the stream's subjects (as
// `nats stream edit <stream> --subjects <prefix>.> --subjects <key prefix>.>` does), after
// which the events written before still load and claims work.
func testKeyUpgrade(t *testing.T, e env) {
	ctx := ctxT(t)
	name := fmt.Sprint("UPGRADE_", unique.Add(1))
	prefix, keyPrefix := strings.ToLower(name), strings.ToLower(name)+"-key"
	old, err := jetstore.New(e.JS, jetstore.Config{Stream: name, SubjectPrefix: prefix, Replicas: e.Replicas})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	agg := jetstore.AggregateRef{Type: "order", ID: "o1"}
	evs := newEvents(2, "Created")
	res := mustAppend(t, old, agg, 0, evs)

	st, err := jetstore.New(e.JS, jetstore.Config{Stream: name, SubjectPrefix: prefix, Replicas: e.Replicas, KeyPrefix: keyPrefix})
	if err != nil {
		t.Fatal(err)
	}
	var serr *jetstore.IncompatibleStreamError
	if err := st.EnsureStream(ctx); !errors.As(err, &serr) || len(serr.Problems) != 1 || !strings.Contains(err.Error(), keyPrefix+".>") {
		t.Fatalf("EnsureStream of a stream without key subjects: %v, want one problem naming %s.>", err, keyPrefix)
	}
	stream, err := e.JS.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	cfg := stream.CachedInfo().Config
	cfg.Subjects = append(cfg.Subjects, keyPrefix+".>")
	if _, err := e.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatalf("adding the key subjects: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for err = st.EnsureStream(ctx); err != nil && time.Now().Before(deadline); err = st.EnsureStream(ctx) {
		time.Sleep(10 * time.Millisecond) // the update reaches every replica
	}
	if err != nil {
		t.Fatalf("EnsureStream after the upgrade: %v", err)
	}
	sameEvents(t, mustLoad(t, st, agg).Events, evs)
	mustAppendKeys(t, st, agg, res.LastSequence, newEvents(1, "Named"), jetstore.Claim("name", "first"))
	heldBy(t, st, "name", "first", agg)
	if err := e.JS.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatal(err)
	}
}

func mustAppendKeys(t *testing.T, st *jetstore.Store, agg jetstore.AggregateRef, expected uint64, evs []jetstore.Event, opts ...jetstore.AppendOption) jetstore.AppendResult {
	t.Helper()
	res, err := st.Append(ctxT(t), agg, expected, evs, opts...)
	if err != nil || res.Duplicate || res.LastSequence-res.FirstSequence+1 != uint64(len(evs)) {
		t.Fatalf("Append(%s, expected %d, %d events, %d keys): %+v, %v", agg, expected, len(evs), len(opts), res, err)
	}
	return res
}
