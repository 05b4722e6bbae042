package resourcestore

import (
	"context"
	"strconv"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestRoundTripThroughTheStore writes the events of real decisions and reads them back, both
// through Load and as a consumer sees them, and checks that the folds agree.
func TestRoundTripThroughTheStore(t *testing.T) {
	srv := natstest.RunServer(t)
	js, err := jetstream.New(natstest.Connect(t, srv.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := jetstore.New(js, jetstore.Config{}, jetstore.WithUpcasters(Upcasters()...))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}

	id := uuid.New()
	ts := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	meta := func() cr.CommandMeta {
		c := uuid.New()
		return cr.CommandMeta{CommandID: c, CorrelationID: c, Timestamp: ts}
	}
	host, err := cr.ParseHostname("web-01.example.com")
	if err != nil {
		t.Fatal(err)
	}
	org, loc := cr.OrganizationID(uuid.New()), cr.LocationID(uuid.New())
	cmds := []cr.Command{
		cr.RegisterResource{Meta: meta(), ID: id, Hostname: host, Type: cr.ResourceTypeVirtualMachine},
		cr.AssignOrganization{Meta: meta(), ID: id, OrganizationID: org},
		cr.AssignLocation{Meta: meta(), ID: id, LocationID: loc},
		cr.ChangeStatus{Meta: meta(), ID: id, To: cr.StatusActive},
	}
	var want cr.State
	var expected uint64
	for _, c := range cmds {
		evs, err := cr.Decide(want, c)
		if err != nil {
			t.Fatalf("%s: %v", c.CommandName(), err)
		}
		stored, err := ToStore(evs)
		if err != nil {
			t.Fatal(err)
		}
		res, err := store.Append(ctx, Ref(id), expected, stored)
		if err != nil {
			t.Fatalf("append %s: %v", c.CommandName(), err)
		}
		expected = res.LastSequence
		want = cr.Fold(want, evs...)
	}

	loaded, err := store.Load(ctx, Ref(id))
	if err != nil {
		t.Fatal(err)
	}
	got, err := FoldStored(cr.State{}, loaded.Events)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(want) {
		t.Fatalf("state from the store differs from the decided one")
	}
	if got.Status() != cr.StatusActive {
		t.Fatalf("status %v, want active", got.Status())
	}

	// As a consumer sees it: headers and payload only.
	var fromMsgs cr.State
	for _, r := range loaded.Events {
		h := nats.Header{}
		h.Set(jetstore.HeaderEventType, r.Type)
		h.Set(jetstore.HeaderEventVersion, strconv.Itoa(r.SchemaVersion))
		e, err := DecodeMsg(h, r.Data)
		if err != nil {
			t.Fatal(err)
		}
		fromMsgs = cr.Apply(fromMsgs, e)
	}
	if !fromMsgs.Equal(want) {
		t.Fatal("state from message decoding differs")
	}
	if _, err := DecodeMsg(nats.Header{}, nil); err == nil {
		t.Fatal("a message without headers decoded")
	}
}

// TestToStoreIDs checks the ids ToStore writes against uuid.UUID's String: the event id
// always, the others only when they are set.
func TestToStoreIDs(t *testing.T) {
	t.Parallel()
	ts := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, m := range []cr.EventMeta{
		{EventID: uuid.New(), AggregateID: uuid.New(), CommandID: uuid.New(), CorrelationID: uuid.New(), CausationID: uuid.New(), Timestamp: ts},
		{EventID: uuid.New(), AggregateID: uuid.New(), CorrelationID: uuid.New(), Timestamp: ts},
		{EventID: uuid.MustParse("ffffffff-ffff-ffff-ffff-ffffffffffff"), AggregateID: uuid.New(), CorrelationID: uuid.MustParse("00000000-0000-0000-0000-000000000001"), CommandID: uuid.New(), Timestamp: ts},
	} {
		stored, err := ToStore([]cr.Event{cr.AccountConceptCleared{EventMeta: m}})
		if err != nil {
			t.Fatal(err)
		}
		optional := func(id uuid.UUID) string {
			if id == uuid.Nil {
				return ""
			}
			return id.String()
		}
		got := stored[0]
		if got.ID != m.EventID.String() || got.CorrelationID != optional(m.CorrelationID) ||
			got.CausationID != optional(m.CausationID) || got.CommandID != optional(m.CommandID) {
			t.Fatalf("ids %q %q %q %q for %+v", got.ID, got.CorrelationID, got.CausationID, got.CommandID, m)
		}
	}
}
