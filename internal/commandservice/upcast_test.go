package commandservice

import (
	"encoding/json"
	"fmt"
	"testing"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
)

// TestReadsLegacyEventsUpcast: a ResourceRegistered of schema version 1 (upstream's, with a
// free-form type and a hostname in mixed case) in the stream is read upcast by every read of
// the command service: get, history, and the load behind a command.
func TestReadsLegacyEventsUpcast(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	startInstance(t, srv.ClientURL()) // creates the stream
	st := testStore(t, srv.ClientURL(), 1)
	ctx := testCtx(t)
	id := uuid.New()
	legacy := fmt.Appendf(nil, `{"event_version":1,"event_id":%q,"aggregate_id":%q,"timestamp":"2026-01-19T10:00:00Z","hostname":"Legacy-Box.Example.com","resource_type":"vm","correlation_id":%q,"causation_id":null}`,
		uuid.NewString(), id, uuid.NewString())
	ev := jetstore.Event{ID: uuid.NewString(), Type: cr.EventTypeResourceRegistered, SchemaVersion: 1, Data: legacy}
	if _, err := st.Append(ctx, resourcestore.Ref(id), 0, []jetstore.Event{ev}); err != nil {
		t.Fatal(err)
	}

	c := newClient(t, srv.ClientURL())
	r, err := c.Get(ctx, api.Get{AggregateID: id.String()})
	if err != nil {
		t.Fatal(err)
	}
	if r.ResourceType != cr.ResourceTypeVirtualMachine.String() || r.Hostname != "legacy-box.example.com" {
		t.Fatalf("get: type %q hostname %q, want the upcast %q %q", r.ResourceType, r.Hostname, cr.ResourceTypeVirtualMachine, "legacy-box.example.com")
	}

	page, err := c.History(ctx, api.History{AggregateID: id.String()})
	if err != nil {
		t.Fatal(err)
	}
	current, _ := cr.CurrentVersion(cr.EventTypeResourceRegistered)
	if len(page.Events) != 1 || page.Events[0].SchemaVersion != current {
		t.Fatalf("history: %+v, want one event at version %d", page.Events, current)
	}
	var data map[string]any
	if err := json.Unmarshal(page.Events[0].Data, &data); err != nil {
		t.Fatal(err)
	}
	if data["resource_type"] != cr.ResourceTypeVirtualMachine.String() || data["hostname"] != "legacy-box.example.com" || data["event_version"] != nil {
		t.Fatalf("history data %s is not upcast", page.Events[0].Data)
	}

	// A command decides on the upcast state: the resource is registered.
	reply, err := c.AssignOrganization(ctx, api.AssignOrganization{Target: api.Target{AggregateID: id.String()}, OrganizationID: uuid.NewString()})
	if err != nil {
		t.Fatal(err)
	}
	if len(reply.Events) != 1 || reply.Events[0].Type != cr.EventTypeOrganizationAssigned {
		t.Fatalf("assign_organization on a legacy resource: %+v", reply)
	}
}
