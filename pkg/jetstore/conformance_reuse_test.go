package jetstore_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cim-infra/registry/pkg/jetstore"
)

// testEventIDReused: event ids already stored, but not as this same write (on another
// aggregate, or as part of another write), are an *EventIDReusedError: never success, never a
// conflict that reloading could resolve, and nothing is written. Single events and batches
// alike.
func testEventIDReused(t *testing.T, e env) {
	st, owner := e.Store, newAgg(t)
	single := newEvents(1, "Created")
	one := mustAppend(t, st, owner, 0, single)
	batch := newEvents(3, "Changed")
	three := mustAppend(t, st, owner, one.LastSequence, batch)
	fresh := func() jetstore.Event { return newEvents(1, "Fresh")[0] }

	cases := []struct {
		name string
		agg  jetstore.AggregateRef
		// expected is the aggregate's last sequence: only the ids can be refused.
		expected uint64
		events   []jetstore.Event
		// storedAt is where the error must say the first event is stored, 0 when it may not know.
		storedAt uint64
	}{
		{"single event of another aggregate", newAgg(t), 0, single, one.FirstSequence},
		{"batch of another aggregate", newAgg(t), 0, batch, 0},
		{"batch with a stored id last", newAgg(t), 0, []jetstore.Event{fresh(), batch[2]}, 0},
		{"batch with a stored id first", newAgg(t), 0, []jetstore.Event{single[0], fresh()}, 0},
		{"single event from the middle of a stored batch", owner, three.LastSequence, batch[1:2], three.FirstSequence + 1},
		{"batch that begins a stored batch", owner, three.LastSequence, batch[:2], three.FirstSequence},
		{"batch that ends with a stored batch", owner, three.LastSequence, []jetstore.Event{fresh(), batch[0], batch[1], batch[2]}, 0},
		{"stored single event and a stored batch as one batch", owner, three.LastSequence, append(single[:1:1], batch...), one.FirstSequence},
	}
	for _, c := range cases {
		before := mustLoad(t, st, c.agg)
		_, err := st.Append(ctxT(t), c.agg, c.expected, c.events)
		var rerr *jetstore.EventIDReusedError
		switch {
		case !errors.As(err, &rerr) || !errors.Is(err, jetstore.ErrEventIDReused):
			t.Errorf("%s: %v, want *EventIDReusedError", c.name, err)
			continue
		case errors.Is(err, jetstore.ErrConcurrency):
			t.Errorf("%s: %v is also a concurrency conflict", c.name, err)
		case rerr.Aggregate != c.agg:
			t.Errorf("%s: error names aggregate %v, want %v", c.name, rerr.Aggregate, c.agg)
		case c.storedAt != 0 && (rerr.Sequence != c.storedAt || rerr.EventID != c.events[0].ID || rerr.StoredOn != owner):
			t.Errorf("%s: error says %s stored at %d on %v, want %s at %d on %v", c.name, rerr.EventID, rerr.Sequence, rerr.StoredOn, c.events[0].ID, c.storedAt, owner)
		}
		if after := mustLoad(t, st, c.agg); after.LastSequence != before.LastSequence {
			t.Errorf("%s: wrote up to %d", c.name, after.LastSequence)
		}
	}
	sameEvents(t, mustLoad(t, st, owner).Events, append(single[:1:1], batch...))
}

// testRetryAfterReload: a write retried after its caller reloaded the aggregate (so with the
// current expected sequence, which includes the write) is the same write: Duplicate with the
// original sequences, nothing written; single events and batches alike, also once the
// aggregate has moved on.
func testRetryAfterReload(t *testing.T, e env) {
	st := e.Store
	for _, n := range []int{1, 2, 5} {
		t.Run(fmt.Sprintf("%d events", n), func(t *testing.T) {
			agg := newAgg(t)
			base := mustAppend(t, st, agg, 0, newEvents(1, "Created"))
			evs := newEvents(n, "Changed")
			orig := mustAppend(t, st, agg, base.LastSequence, evs)
			retry := func(expected uint64) {
				t.Helper()
				res, err := st.Append(ctxT(t), agg, expected, evs)
				if err != nil || !res.Duplicate || res.FirstSequence != orig.FirstSequence || res.LastSequence != orig.LastSequence {
					t.Fatalf("retry with expected %d: %+v, %v; want duplicate of %+v", expected, res, err, orig)
				}
			}
			retry(orig.LastSequence)
			later := mustAppend(t, st, agg, orig.LastSequence, newEvents(2, "Later"))
			retry(later.LastSequence)
			if l := mustLoad(t, st, agg); l.LastSequence != later.LastSequence || len(l.Events) != n+3 {
				t.Fatalf("after retries: %d events up to %d, want %d up to %d", len(l.Events), l.LastSequence, n+3, later.LastSequence)
			}
		})
	}
}
