package jetstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/nats-io/nats.go/jetstream"
)

// TestReadAllSkipsOtherSubjects: ReadAll reads without a subject filter, so on a stream that
// also captures other subjects (created by someone else) it must skip their messages, across
// page boundaries, and still reach the head.
func TestReadAllSkipsOtherSubjects(t *testing.T) {
	t.Parallel()
	nc := natstest.Connect(t, natstest.RunServer(t).ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SHARED", Subjects: []string{"shared.>", "other.>"},
		AllowDirect: true, AllowAtomicPublish: true, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	st, err := jetstore.New(js, jetstore.Config{Stream: "SHARED", SubjectPrefix: "shared"}, jetstore.WithPageSize(7))
	if err != nil {
		t.Fatal(err)
	}
	agg := jetstore.AggregateRef{Type: "order", ID: "o1"}
	var last uint64
	for i := range 20 {
		// Runs of foreign messages longer than a page, between the store's events.
		for j := range i % 10 {
			if _, err := js.Publish(ctx, fmt.Sprintf("other.x%d", j), []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		res, err := st.Append(ctx, agg, last, []jetstore.Event{{ID: fmt.Sprint("e", i), Type: "Created", SchemaVersion: 1, Data: []byte("{}")}})
		if err != nil {
			t.Fatal(err)
		}
		last = res.LastSequence
	}
	for range 15 { // foreign messages after the last event too
		if _, err := js.Publish(ctx, "other.tail", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	var got []uint64
	if err := st.ReadAll(ctx, 0, func(e jetstore.RecordedEvent) error {
		if e.Aggregate != agg {
			return fmt.Errorf("event of %v at %d", e.Aggregate, e.Sequence)
		}
		got = append(got, e.Sequence)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 20 || got[19] != last {
		t.Fatalf("read %d events ending at %v, want 20 ending at %d", len(got), got, last)
	}
}
