package commandservice

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
)

// TestEveryCommandAndQuery drives a resource through every command and query over NATS and
// checks each reply against the state the queries return and the events stored.
func TestEveryCommandAndQuery(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	in := startInstance(t, srv.ClientURL())
	c := newClient(t, srv.ClientURL())
	ctx := testCtx(t)
	st := testStore(t, srv.ClientURL(), 1)

	// Register without aggregate_id: the id is derived from the command id.
	cmdID := newID()
	reg, err := c.Register(ctx, api.Register{Envelope: api.Envelope{CommandID: cmdID}, Hostname: "Web-01.Example.com.", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	cmdUUID := uuid.MustParse(cmdID)
	derived := uuid.NewSHA1(registerNamespace, cmdUUID[:]).String()
	if reg.AggregateID != derived || reg.Duplicate || len(reg.Events) != 1 || reg.Events[0].Type != "ResourceRegistered" || reg.Version != reg.Events[0].Sequence {
		t.Fatalf("register reply %+v, want aggregate %s and one ResourceRegistered", reg, derived)
	}
	id := reg.AggregateID
	tg := func() api.Target { return api.Target{AggregateID: id} }
	org, loc, owner, pol1, pol2, concept := newID(), newID(), newID(), newID(), newID(), newID()

	steps := []struct {
		name      string
		send      func() (*api.CommandReply, error)
		wantEvent string // "" for a command that changes nothing
	}{
		{"assign_organization", func() (*api.CommandReply, error) {
			return c.AssignOrganization(ctx, api.AssignOrganization{Target: tg(), OrganizationID: org})
		}, "OrganizationAssigned"},
		{"assign_organization again", func() (*api.CommandReply, error) {
			return c.AssignOrganization(ctx, api.AssignOrganization{Target: tg(), OrganizationID: org})
		}, ""},
		{"assign_location", func() (*api.CommandReply, error) {
			return c.AssignLocation(ctx, api.AssignLocation{Target: tg(), LocationID: loc})
		}, "LocationAssigned"},
		{"assign_owner", func() (*api.CommandReply, error) {
			return c.AssignOwner(ctx, api.AssignOwner{Target: tg(), OwnerID: owner})
		}, "OwnerAssigned"},
		{"add_policy 1", func() (*api.CommandReply, error) {
			return c.AddPolicy(ctx, api.AddPolicy{Target: tg(), PolicyID: pol1})
		}, "PolicyAdded"},
		{"add_policy 2", func() (*api.CommandReply, error) {
			return c.AddPolicy(ctx, api.AddPolicy{Target: tg(), PolicyID: pol2})
		}, "PolicyAdded"},
		{"remove_policy 1", func() (*api.CommandReply, error) {
			return c.RemovePolicy(ctx, api.RemovePolicy{Target: tg(), PolicyID: pol1})
		}, "PolicyRemoved"},
		{"assign_account_concept", func() (*api.CommandReply, error) {
			return c.AssignAccountConcept(ctx, api.AssignAccountConcept{Target: tg(), ConceptID: concept})
		}, "AccountConceptAssigned"},
		{"clear_account_concept", func() (*api.CommandReply, error) {
			return c.ClearAccountConcept(ctx, api.ClearAccountConcept{Target: tg()})
		}, "AccountConceptCleared"},
		{"clear_account_concept again", func() (*api.CommandReply, error) {
			return c.ClearAccountConcept(ctx, api.ClearAccountConcept{Target: tg()})
		}, ""},
		{"set_hardware_details", func() (*api.CommandReply, error) {
			return c.SetHardwareDetails(ctx, api.SetHardwareDetails{Target: tg(), Manufacturer: ptr("Dell"), Model: ptr("R750")})
		}, "HardwareDetailsSet"},
		{"assign_asset_tag", func() (*api.CommandReply, error) {
			return c.AssignAssetTag(ctx, api.AssignAssetTag{Target: tg(), AssetTag: "AT-0001"})
		}, "AssetTagAssigned"},
		{"update_metadata", func() (*api.CommandReply, error) {
			return c.UpdateMetadata(ctx, api.UpdateMetadata{Target: tg(), Key: "env", Value: "prod"})
		}, "MetadataUpdated"},
		{"change_status active", func() (*api.CommandReply, error) {
			return c.ChangeStatus(ctx, api.ChangeStatus{Target: tg(), Status: "Active"})
		}, "StatusChanged"},
	}
	version := reg.Version
	versions := []uint64{version}
	for _, step := range steps {
		r, err := step.send()
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if r.AggregateID != id || r.Duplicate {
			t.Fatalf("%s: reply %+v", step.name, r)
		}
		if step.wantEvent == "" {
			if len(r.Events) != 0 || r.Version != version {
				t.Fatalf("%s: reply %+v, want no events at version %d", step.name, r, version)
			}
			continue
		}
		if len(r.Events) != 1 || r.Events[0].Type != step.wantEvent || r.Events[0].Sequence <= version || r.Version != r.Events[0].Sequence {
			t.Fatalf("%s: reply %+v, want one %s after version %d", step.name, r, step.wantEvent, version)
		}
		version = r.Version
		versions = append(versions, version)
	}

	got, err := c.Get(ctx, api.Get{AggregateID: id})
	if err != nil {
		t.Fatal(err)
	}
	want := api.Resource{
		ID: id, Hostname: "web-01.example.com", ResourceType: "virtual_machine", Category: got.Category, Status: "active",
		OrganizationID: org, LocationID: loc, OwnerID: owner, Policies: []string{pol2}, Manufacturer: "Dell", Model: "R750",
		AssetTag: "AT-0001", Metadata: map[string]string{"env": "prod"}, CreatedAt: got.CreatedAt, UpdatedAt: got.UpdatedAt, Version: version,
	}
	if gotJSON, wantJSON := mustJSON(t, got), mustJSON(t, want); gotJSON != wantJSON {
		t.Fatalf("get:\n got %s\nwant %s", gotJSON, wantJSON)
	}
	if got.Category == "" || got.CreatedAt.IsZero() || got.UpdatedAt.Before(got.CreatedAt) {
		t.Fatalf("get: category %q, created %s, updated %s", got.Category, got.CreatedAt, got.UpdatedAt)
	}

	// Time travel by sequence: right after registration, and right after the organization.
	first, err := c.Get(ctx, api.Get{AggregateID: id, AsOfSequence: versions[0]})
	if err != nil {
		t.Fatal(err)
	}
	if first.Status != "provisioning" || first.OrganizationID != "" || first.Version != versions[0] {
		t.Fatalf("as of %d: %+v", versions[0], first)
	}
	second, err := c.Get(ctx, api.Get{AggregateID: id, AsOfSequence: versions[1]})
	if err != nil {
		t.Fatal(err)
	}
	if second.OrganizationID != org || second.LocationID != "" || second.Version != versions[1] {
		t.Fatalf("as of %d: %+v", versions[1], second)
	}
	// Time travel by time: now is everything; before registration is nothing.
	now := time.Now().Add(time.Second)
	if all, err := c.Get(ctx, api.Get{AggregateID: id, AsOfTime: &now}); err != nil || all.Version != version {
		t.Fatalf("as of now: %+v, %v", all, err)
	}
	past := time.Now().Add(-time.Hour)
	_, err = c.Get(ctx, api.Get{AggregateID: id, AsOfTime: &past})
	wantError(t, err, api.CodeNotFound, api.KindNotFound)

	// History, paged by 4, equals the stored events, upcast and in order.
	stored := eventsOf(t, st, id)
	events, err := c.AllHistory(ctx, api.History{AggregateID: id, Limit: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != len(stored) || len(stored) != len(versions) {
		t.Fatalf("history has %d events, store %d, replies %d", len(events), len(stored), len(versions))
	}
	for i, e := range events {
		s := stored[i]
		if e.Sequence != s.Sequence || e.ID != s.ID || e.Type != s.Type || e.CommandID != s.CommandID || e.SchemaVersion != s.SchemaVersion || string(e.Data) != string(s.Data) {
			t.Fatalf("history event %d: %+v, stored %+v", i, e, s)
		}
		if e.Sequence != versions[i] {
			t.Fatalf("history event %d at %d, reply said %d", i, e.Sequence, versions[i])
		}
	}
	if events[0].CommandID != cmdID || events[0].CorrelationID != cmdID {
		t.Fatalf("registration event: command %s correlation %s, want %s", events[0].CommandID, events[0].CorrelationID, cmdID)
	}
	page, err := c.History(ctx, api.History{AggregateID: id})
	if err != nil || len(page.Events) != len(stored) || page.More {
		t.Fatalf("default page: %d events, more %v, %v", len(page.Events), page.More, err)
	}
	page, err = c.History(ctx, api.History{AggregateID: id, AfterSequence: version})
	if err != nil || len(page.Events) != 0 || page.More {
		t.Fatalf("page after the last event: %+v, %v", page, err)
	}

	if hits := in.counter(t, in.svc.metrics.cacheHits); hits < float64(len(steps)) {
		t.Fatalf("cache hits %v, want at least %d", hits, len(steps))
	}
	if ok := in.counter(t, in.svc.metrics.commands.WithLabelValues(api.CmdAddPolicy, OutcomeOK)); ok != 2 {
		t.Fatalf("add_policy ok count %v, want 2", ok)
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRegisterWithAggregateIDAndCorrelation checks the envelope fields the client may set.
func TestRegisterWithAggregateIDAndCorrelation(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	startInstance(t, srv.ClientURL())
	c := newClient(t, srv.ClientURL())
	ctx := testCtx(t)
	st := testStore(t, srv.ClientURL(), 1)

	id, corr, cause := newID(), newID(), newID()
	ts := time.Now().Add(-time.Minute).Truncate(time.Second).In(time.FixedZone("x", 3600)) // within -max-clock-skew
	r, err := c.Register(ctx, api.Register{AggregateID: id, Hostname: "db-1", ResourceType: "bare_metal",
		Envelope: api.Envelope{CorrelationID: corr, CausationID: cause, Timestamp: &ts}})
	if err != nil {
		t.Fatal(err)
	}
	if r.AggregateID != id {
		t.Fatalf("aggregate %s, want %s", r.AggregateID, id)
	}
	ev := eventsOf(t, st, id)
	if len(ev) != 1 || ev[0].CorrelationID != corr || ev[0].CausationID != cause {
		t.Fatalf("stored %+v", ev)
	}
	got, err := c.Get(ctx, api.Get{AggregateID: id})
	if err != nil || !got.CreatedAt.Equal(ts) || got.CreatedAt.Location() != time.UTC {
		t.Fatalf("created at %v (%v), want %v in UTC", got.CreatedAt, err, ts)
	}
	if !slices.Equal(got.Policies, []string{}) || got.Metadata == nil {
		t.Fatalf("empty collections: %+v", got)
	}
}
