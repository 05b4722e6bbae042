package commandservice

import (
	"slices"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
)

// TestMayHaveChangedNothing checks the rule that spares the results-bucket lookup: a command
// can have changed nothing before only if it sets a value the resource has held.
func TestMayHaveChangedNothing(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	meta := func() cr.CommandMeta { return cr.CommandMeta{CommandID: uuid.New(), Timestamp: time.Now()} }
	org1, org2 := cr.OrganizationID(uuid.New()), cr.OrganizationID(uuid.New())
	host, _ := cr.ParseHostname("h")
	history := []cr.Command{
		cr.RegisterResource{Meta: meta(), ID: id, Hostname: host, Type: cr.ResourceTypes()[0]},
		cr.AssignOrganization{Meta: meta(), ID: id, OrganizationID: org1},
		cr.AssignOrganization{Meta: meta(), ID: id, OrganizationID: org2},
		cr.UpdateMetadata{Meta: meta(), ID: id, Key: "env", Value: "prod"},
		cr.UpdateMetadata{Meta: meta(), ID: id, Key: "env", Value: "test"},
		cr.SetHardwareDetails{Meta: meta(), ID: id, Manufacturer: ptr("Dell")},
	}
	var a aggregate
	for i, c := range history {
		evs, err := cr.Decide(a.state, c)
		if err != nil || len(evs) != 1 {
			t.Fatalf("history %d: %v, %d events", i, err, len(evs))
		}
		a.record(evs[0], uint64(i+1))
	}
	tests := []struct {
		name string
		cmd  cr.Command
		want bool
	}{
		{"register", cr.RegisterResource{ID: id}, false},
		{"add policy", cr.AddPolicy{ID: id}, false},
		{"organization held before", cr.AssignOrganization{ID: id, OrganizationID: org1}, true},
		{"organization never held", cr.AssignOrganization{ID: id, OrganizationID: cr.OrganizationID(uuid.New())}, false},
		{"location never held", cr.AssignLocation{ID: id, LocationID: cr.LocationID(uuid.New())}, false},
		{"metadata value held before", cr.UpdateMetadata{ID: id, Key: "env", Value: "prod"}, true},
		{"metadata value never held", cr.UpdateMetadata{ID: id, Key: "env", Value: "dev"}, false},
		{"metadata value of another key", cr.UpdateMetadata{ID: id, Key: "team", Value: "prod"}, false},
		{"hardware all held", cr.SetHardwareDetails{ID: id, Manufacturer: ptr("Dell")}, true},
		{"hardware one never held", cr.SetHardwareDetails{ID: id, Manufacturer: ptr("Dell"), Model: ptr("R1")}, false},
		{"status held", cr.ChangeStatus{ID: id, To: cr.StatusProvisioning}, true},
		{"status never held", cr.ChangeStatus{ID: id, To: cr.StatusActive}, false},
		{"asset tag never held", cr.AssignAssetTag{ID: id, AssetTag: "x"}, false},
		{"clear account concept", cr.ClearAccountConcept{ID: id}, true},
	}
	for _, tt := range tests {
		if got := mayHaveChangedNothing(&a, tt.cmd); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestAggregateResults checks the results the aggregate keeps for duplicate detection: the
// events of each command id with their sequences, whether a command's events are contiguous
// (one atomic append) or, against expectation, not.
func TestAggregateResults(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	cmdA, cmdB := uuid.New(), uuid.New()
	event := func(cmd uuid.UUID, key string) cr.Event {
		return cr.MetadataUpdated{EventMeta: cr.EventMeta{EventID: uuid.New(), AggregateID: id, CommandID: cmd}, Key: key, Value: "v"}
	}
	history := []struct {
		e   cr.Event
		seq uint64
	}{
		{event(cmdA, "a1"), 3}, {event(cmdA, "a2"), 4}, // contiguous
		{event(cmdB, "b1"), 9},
		{event(cmdA, "a3"), 12}, // not contiguous with a1, a2
		{event(uuid.Nil, "legacy"), 13},
		{event(cmdA, "a4"), 20},
	}
	var a aggregate
	want := map[uuid.UUID][]api.EventRef{}
	for _, h := range history {
		a.record(h.e, h.seq)
		if cmd := h.e.Meta().CommandID; cmd != uuid.Nil {
			want[cmd] = append(want[cmd], api.EventRef{Type: h.e.EventType(), ID: h.e.Meta().EventID.String(), Sequence: h.seq})
		}
		for cmd, refs := range want {
			r, ok := a.result(cmd)
			if !ok || !slices.Equal(r.events, refs) || r.version != refs[len(refs)-1].Sequence {
				t.Fatalf("after sequence %d, command %s: %+v (%v), want %+v", h.seq, cmd, r, ok, refs)
			}
		}
	}
	if _, ok := a.result(uuid.New()); ok {
		t.Fatal("result of a command never applied")
	}
	if a.lastSeq != 20 {
		t.Fatalf("last sequence %d", a.lastSeq)
	}
}
