package api_test

import (
	"encoding/json"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
)

// TestResourceOfRendersEveryField: every part of a state that has every field set reaches its
// field of api.Resource, and an unset optional field stays empty (omitted on the wire).
func TestResourceOfRendersEveryField(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	at := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	n := 0
	meta := func() cr.CommandMeta {
		n++
		return cr.CommandMeta{CommandID: uuid.New(), Timestamp: at.Add(time.Duration(n) * time.Minute)}
	}
	host, err := cr.ParseHostname("web-01.example.com")
	if err != nil {
		t.Fatal(err)
	}
	org, loc, owner, policy, concept := uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()
	manufacturer, model, serial := "Acme", "X1", "SN-1"
	var st cr.State
	for _, c := range []cr.Command{
		cr.RegisterResource{Meta: meta(), ID: id, Hostname: host, Type: cr.ResourceTypeVirtualMachine},
		cr.AssignOrganization{Meta: meta(), ID: id, OrganizationID: cr.OrganizationID(org)},
		cr.AssignLocation{Meta: meta(), ID: id, LocationID: cr.LocationID(loc)},
		cr.AssignOwner{Meta: meta(), ID: id, OwnerID: cr.PersonID(owner)},
		cr.AddPolicy{Meta: meta(), ID: id, PolicyID: cr.PolicyID(policy)},
		cr.AssignAccountConcept{Meta: meta(), ID: id, ConceptID: cr.AccountConceptID(concept)},
		cr.SetHardwareDetails{Meta: meta(), ID: id, Manufacturer: &manufacturer, Model: &model, SerialNumber: &serial},
		cr.AssignAssetTag{Meta: meta(), ID: id, AssetTag: "TAG-1"},
		cr.UpdateMetadata{Meta: meta(), ID: id, Key: "rack", Value: "r1"},
		cr.ChangeStatus{Meta: meta(), ID: id, To: cr.StatusActive},
	} {
		evs, err := cr.Decide(st, c)
		if err != nil {
			t.Fatalf("%s: %v", c.CommandName(), err)
		}
		st = cr.Fold(st, evs...)
	}
	want := api.Resource{
		ID: id.String(), Hostname: "web-01.example.com", ResourceType: "virtual_machine",
		Category: cr.ResourceTypeVirtualMachine.Category().String(), Status: "active",
		OrganizationID: org.String(), LocationID: loc.String(), OwnerID: owner.String(), AccountConceptID: concept.String(),
		Policies: []string{policy.String()}, Manufacturer: manufacturer, Model: model, SerialNumber: serial, AssetTag: "TAG-1",
		Metadata: map[string]string{"rack": "r1"}, CreatedAt: at.Add(time.Minute), UpdatedAt: at.Add(10 * time.Minute), Version: 42,
	}
	if got := api.ResourceOf(st, 42); mustJSON(t, got) != mustJSON(t, want) {
		t.Fatalf("ResourceOf =\n%s\nwant\n%s", mustJSON(t, got), mustJSON(t, want))
	}

	// Registered only: the optional fields are empty, the lists empty rather than null.
	var bare cr.State
	evs, err := cr.Decide(bare, cr.RegisterResource{Meta: meta(), ID: id, Hostname: host, Type: cr.ResourceTypeVirtualMachine})
	if err != nil {
		t.Fatal(err)
	}
	bare = cr.Fold(bare, evs...)
	got := mustJSON(t, api.ResourceOf(bare, 1))
	wantBare := mustJSON(t, api.Resource{ID: id.String(), Hostname: "web-01.example.com", ResourceType: "virtual_machine",
		Category: cr.ResourceTypeVirtualMachine.Category().String(), Status: "provisioning", Policies: []string{}, Metadata: map[string]string{},
		CreatedAt: at.Add(11 * time.Minute), UpdatedAt: at.Add(11 * time.Minute), Version: 1})
	if got != wantBare {
		t.Fatalf("ResourceOf of a bare registration =\n%s\nwant\n%s", got, wantBare)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
