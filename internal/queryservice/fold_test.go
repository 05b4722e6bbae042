package queryservice

import (
	"maps"
	"slices"
	"testing"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
)

// expectEqualFold requires that rows, the whole model as list returns it, hold exactly the
// registered resources of states, each equal field by field to its fold.
func expectEqualFold(t *testing.T, rows []api.Resource, states map[uuid.UUID]cr.State, version map[uuid.UUID]uint64) {
	t.Helper()
	want := 0
	for _, st := range states {
		if st.Registered() {
			want++
		}
	}
	if len(rows) != want {
		t.Fatalf("list returned %d resources, the fold has %d", len(rows), want)
	}
	seen := map[string]bool{}
	for _, r := range rows {
		if seen[r.ID] {
			t.Fatalf("resource %s listed twice", r.ID)
		}
		seen[r.ID] = true
		id, err := uuid.Parse(r.ID)
		if err != nil {
			t.Fatalf("id %q: %v", r.ID, err)
		}
		st, ok := states[id]
		if !ok || !st.Registered() {
			t.Fatalf("resource %s listed, never registered", r.ID)
		}
		expectResource(t, r, st, version[id])
	}
}

// expectResource compares one row with the fold, field by field.
func expectResource(t *testing.T, r api.Resource, st cr.State, version uint64) {
	t.Helper()
	str := func(get func() (string, bool)) string { v, _ := get(); return v }
	idOr := func(s string, ok bool) string {
		if !ok {
			return ""
		}
		return s
	}
	org, orgOK := st.OrganizationID()
	loc, locOK := st.LocationID()
	owner, ownerOK := st.OwnerID()
	concept, conceptOK := st.AccountConceptID()
	var policies []string
	for _, p := range st.Policies() {
		policies = append(policies, p.String())
	}
	for _, c := range []struct{ field, got, want string }{
		{"hostname", r.Hostname, st.Hostname().String()},
		{"resource_type", r.ResourceType, st.Type().String()},
		{"category", r.Category, st.Type().Category().String()},
		{"status", r.Status, st.Status().String()},
		{"organization_id", r.OrganizationID, idOr(org.String(), orgOK)},
		{"location_id", r.LocationID, idOr(loc.String(), locOK)},
		{"owner_id", r.OwnerID, idOr(owner.String(), ownerOK)},
		{"account_concept_id", r.AccountConceptID, idOr(concept.String(), conceptOK)},
		{"manufacturer", r.Manufacturer, str(st.Manufacturer)},
		{"model", r.Model, str(st.Model)},
		{"serial_number", r.SerialNumber, str(st.SerialNumber)},
		{"asset_tag", r.AssetTag, str(st.AssetTag)},
	} {
		if c.got != c.want {
			t.Fatalf("resource %s: %s %q, the fold has %q", r.ID, c.field, c.got, c.want)
		}
	}
	if !slices.Equal(r.Policies, policies) && len(r.Policies)+len(policies) > 0 {
		t.Fatalf("resource %s: policies %v, the fold has %v", r.ID, r.Policies, policies)
	}
	if !maps.Equal(r.Metadata, st.Metadata()) {
		t.Fatalf("resource %s: metadata %v, the fold has %v", r.ID, r.Metadata, st.Metadata())
	}
	if !r.CreatedAt.Equal(st.CreatedAt()) || !r.UpdatedAt.Equal(st.UpdatedAt()) {
		t.Fatalf("resource %s: created/updated %s/%s, the fold has %s/%s", r.ID, r.CreatedAt, r.UpdatedAt, st.CreatedAt(), st.UpdatedAt())
	}
	if r.Version != version {
		t.Fatalf("resource %s: version %d, its last event is at %d", r.ID, r.Version, version)
	}
}
