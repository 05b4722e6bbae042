package jetstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"

	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/cim-infra/registry/pkg/registrytest"
	"github.com/google/uuid"
)

// An order of a shop: the examples' own aggregate type, to show that the store needs nothing
// of the registry's compute resources. Its events are JSON; its state is their fold.
type order struct {
	Items []string `json:"items"`
	Paid  bool     `json:"paid"`
}

type itemAdded struct {
	Item string `json:"item"`
}

// apply folds one stored event onto the order.
func (o order) apply(e jetstore.RecordedEvent) order {
	switch e.Type {
	case "ItemAdded":
		var d itemAdded
		_ = json.Unmarshal(e.Data, &d)
		o.Items = append(o.Items, d.Item)
	case "OrderPaid":
		o.Paid = true
	}
	return o
}

func newEvent(typ string, data any) jetstore.Event {
	b, _ := json.Marshal(data)
	return jetstore.Event{ID: uuid.NewString(), Type: typ, SchemaVersion: 1, Data: b}
}

// openOrders starts a JetStream server (registrytest's) and an event store of orders on a
// stream of their own.
func openOrders(ctx context.Context, opts ...jetstore.Option) (*registrytest.Registry, *jetstore.Store) {
	reg, err := registrytest.Start(ctx)
	if err != nil {
		log.Fatal(err)
	}
	store, err := jetstore.New(reg.JetStream(), jetstore.Config{Stream: "ORDERS", SubjectPrefix: "shop.evt"}, opts...)
	if err != nil {
		log.Fatal(err)
	}
	if err := store.EnsureStream(ctx); err != nil {
		log.Fatal(err)
	}
	return reg, store
}

// A second aggregate type of your own: events of orders on shop.evt.order.<id>, appended with
// the sequence the writer last saw, loaded and folded.
func Example_ownAggregateType() {
	ctx := context.Background()
	reg, store := openOrders(ctx)
	defer reg.Close()

	ref := jetstore.AggregateRef{Type: "order", ID: "o-1001"}
	// 0: the order must not exist yet.
	res, err := store.Append(ctx, ref, 0, []jetstore.Event{
		newEvent("ItemAdded", itemAdded{Item: "keyboard"}),
		newEvent("ItemAdded", itemAdded{Item: "mouse"}),
	})
	if err != nil {
		log.Fatal(err)
	}
	// The last sequence is what the next append expects.
	if _, err := store.Append(ctx, ref, res.LastSequence, []jetstore.Event{newEvent("OrderPaid", struct{}{})}); err != nil {
		log.Fatal(err)
	}

	loaded, err := store.Load(ctx, ref)
	if err != nil {
		log.Fatal(err)
	}
	var o order
	for _, e := range loaded.Events {
		o = o.apply(e)
	}
	subject, _ := store.Subject(ref)
	fmt.Println(subject)
	fmt.Printf("%v paid=%v at sequence %d\n", o.Items, o.Paid, loaded.LastSequence)
	// Output:
	// shop.evt.order.o-1001
	// [keyboard mouse] paid=true at sequence 3
}

// Two writers decide on the same state; the server lets the first append through and refuses
// the second with a *ConcurrencyError. The loser reloads, decides again on the new state, and
// appends with the new expected sequence.
func ExampleConcurrencyError() {
	ctx := context.Background()
	reg, store := openOrders(ctx)
	defer reg.Close()

	ref := jetstore.AggregateRef{Type: "order", ID: "o-1002"}
	first, err := store.Append(ctx, ref, 0, []jetstore.Event{newEvent("ItemAdded", itemAdded{Item: "desk"})})
	if err != nil {
		log.Fatal(err)
	}
	seen := first.LastSequence // what both writers loaded

	if _, err := store.Append(ctx, ref, seen, []jetstore.Event{newEvent("ItemAdded", itemAdded{Item: "chair"})}); err != nil {
		log.Fatal(err)
	}
	_, err = store.Append(ctx, ref, seen, []jetstore.Event{newEvent("ItemAdded", itemAdded{Item: "lamp"})})
	fmt.Println("conflict:", errors.Is(err, jetstore.ErrConcurrency))
	var conflict *jetstore.ConcurrencyError
	if errors.As(err, &conflict) {
		fmt.Printf("expected %d, the order is at %d\n", conflict.Expected, conflict.Actual)
		loaded, err := store.Load(ctx, ref)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := store.Append(ctx, ref, loaded.LastSequence, []jetstore.Event{newEvent("ItemAdded", itemAdded{Item: "lamp"})}); err != nil {
			log.Fatal(err)
		}
	}

	loaded, err := store.Load(ctx, ref)
	if err != nil {
		log.Fatal(err)
	}
	var o order
	for _, e := range loaded.Events {
		o = o.apply(e)
	}
	fmt.Println(o.Items)
	// Output:
	// conflict: true
	// expected 1, the order is at 2
	// [desk chair lamp]
}

// Time travel: the order as it was at a stream sequence, or at a time (the server's time of
// the writes).
func ExampleUpToSequence() {
	ctx := context.Background()
	reg, store := openOrders(ctx)
	defer reg.Close()

	ref := jetstore.AggregateRef{Type: "order", ID: "o-1003"}
	var expected uint64
	for _, item := range []string{"pen", "ink", "paper"} {
		res, err := store.Append(ctx, ref, expected, []jetstore.Event{newEvent("ItemAdded", itemAdded{Item: item})})
		if err != nil {
			log.Fatal(err)
		}
		expected = res.LastSequence
	}
	fold := func(opts ...jetstore.LoadOption) order {
		loaded, err := store.Load(ctx, ref, opts...)
		if err != nil {
			log.Fatal(err)
		}
		var o order
		for _, e := range loaded.Events {
			o = o.apply(e)
		}
		return o
	}
	fmt.Println("now:", fold().Items)
	fmt.Println("at sequence 2:", fold(jetstore.UpToSequence(2)).Items)

	all, err := store.Load(ctx, ref)
	if err != nil {
		log.Fatal(err)
	}
	firstWrite := all.Events[0].Time
	fmt.Println("at the first write's time:", fold(jetstore.UpToTime(firstWrite)).Items)
	// Output:
	// now: [pen ink paper]
	// at sequence 2: [pen ink]
	// at the first write's time: [pen]
}

// Snapshots: the folded state is kept in a key-value bucket with the sequence it stands for;
// a load then reads only the events after it.
func ExampleStore_LoadWithSnapshot() {
	ctx := context.Background()
	reg, store := openOrders(ctx)
	defer reg.Close()
	snaps, err := jetstore.NewSnapshotStore(ctx, reg.JetStream(), jetstore.WithSnapshotBucket("ORDER_SNAPSHOTS"),
		jetstore.WithSnapshotPolicy(jetstore.SnapshotEvery(2)))
	if err != nil {
		log.Fatal(err)
	}
	const stateVersion = 1 // of the state's encoding: a snapshot of another version is ignored

	ref := jetstore.AggregateRef{Type: "order", ID: "o-1004"}
	var expected uint64
	for _, item := range []string{"a", "b", "c"} {
		// Load from the snapshot, fold, decide, append, and write a snapshot when one is due.
		l, err := store.LoadWithSnapshot(ctx, ref, snaps, stateVersion)
		if err != nil {
			log.Fatal(err)
		}
		var o order
		if l.Snapshot != nil {
			_ = json.Unmarshal(l.Snapshot.State, &o)
		}
		for _, e := range l.Events {
			o = o.apply(e)
		}
		e := newEvent("ItemAdded", itemAdded{Item: item})
		res, err := store.Append(ctx, ref, l.LastSequence, []jetstore.Event{e})
		if err != nil {
			log.Fatal(err)
		}
		o = o.apply(jetstore.RecordedEvent{Event: e})
		expected = res.LastSequence
		if snaps.Due(len(l.Events) + 1) {
			state, _ := json.Marshal(o)
			if err := snaps.Put(ctx, ref, jetstore.Snapshot{State: state, Sequence: expected, SchemaVersion: stateVersion}); err != nil {
				log.Fatal(err)
			}
		}
	}

	l, err := store.LoadWithSnapshot(ctx, ref, snaps, stateVersion)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("snapshot at sequence %d: %s\n", l.Snapshot.Sequence, l.Snapshot.State)
	fmt.Printf("events after it: %d, state at sequence %d\n", len(l.Events), l.LastSequence)
	// Output:
	// snapshot at sequence 2: {"items":["a","b"],"paid":false}
	// events after it: 1, state at sequence 3
}

// An upcaster turns old events into the current schema on read, so that stored events are
// never rewritten: ItemAdded v1 named the item "name", v2 calls it "item".
func ExampleWithUpcasters() {
	ctx := context.Background()
	renameField := jetstore.Upcaster{EventType: "ItemAdded", FromVersion: 1, Upcast: func(data []byte) ([]byte, error) {
		return bytes.Replace(data, []byte(`"name":`), []byte(`"item":`), 1), nil
	}}
	reg, store := openOrders(ctx, jetstore.WithUpcasters(renameField))
	defer reg.Close()

	ref := jetstore.AggregateRef{Type: "order", ID: "o-1005"}
	old := jetstore.Event{ID: uuid.NewString(), Type: "ItemAdded", SchemaVersion: 1, Data: []byte(`{"name":"stapler"}`)}
	res, err := store.Append(ctx, ref, 0, []jetstore.Event{old})
	if err != nil {
		log.Fatal(err)
	}
	current := jetstore.Event{ID: uuid.NewString(), Type: "ItemAdded", SchemaVersion: 2, Data: []byte(`{"item":"tape"}`)}
	if _, err := store.Append(ctx, ref, res.LastSequence, []jetstore.Event{current}); err != nil {
		log.Fatal(err)
	}

	loaded, err := store.Load(ctx, ref)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range loaded.Events {
		fmt.Printf("v%d %s\n", e.SchemaVersion, e.Data)
	}
	// Output:
	// v2 {"item":"stapler"}
	// v2 {"item":"tape"}
}
