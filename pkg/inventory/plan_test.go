package inventory_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/inventory"
	"github.com/google/uuid"
)

func validRow(t *testing.T, r api.Resource) inventory.Row {
	t.Helper()
	row := inventory.Row{Line: 2, Resource: r}
	if err := row.Validate(); err != nil {
		t.Fatal(err)
	}
	return row
}

func commands(steps []inventory.Step) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s.Command)
	}
	return out
}

func TestPlan(t *testing.T) {
	t.Parallel()
	full := api.Resource{Hostname: "a.example.com", ResourceType: "vm", Status: "maintenance", OrganizationID: org,
		LocationID: loc, Policies: []string{pol2, pol1}, Manufacturer: "Dell", SerialNumber: "S1", AssetTag: "T1",
		Metadata: map[string]string{"rack": "r1", "env": "prod"}}
	row := validRow(t, full)
	id := row.ResourceID()
	registered := api.Resource{ID: id, Hostname: "a.example.com", ResourceType: "virtual_machine", Status: "provisioning", Version: 10}
	for _, tc := range []struct {
		name    string
		row     api.Resource
		current *api.Resource
		want    []string
		column  string // of the conflict, if one
	}{
		{"new", full, nil, []string{"register", "assign_organization", "assign_location", "set_hardware_details",
			"assign_asset_tag", "add_policy", "add_policy", "update_metadata", "update_metadata", "change_status", "change_status"}, ""},
		{"registered", full, &registered, []string{"assign_organization", "assign_location", "set_hardware_details",
			"assign_asset_tag", "add_policy", "add_policy", "update_metadata", "update_metadata", "change_status", "change_status"}, ""},
		{"half done", full, &api.Resource{ID: id, Hostname: "a.example.com", ResourceType: "virtual_machine", Status: "active",
			OrganizationID: org, LocationID: loc, Policies: []string{pol1}, Manufacturer: "Dell", SerialNumber: "S0",
			AssetTag: "T1", Metadata: map[string]string{"rack": "r1", "env": "test", "extra": "kept"}, Version: 20},
			[]string{"set_hardware_details", "add_policy", "update_metadata", "change_status"}, ""},
		{"done", full, &api.Resource{ID: id, Hostname: "a.example.com", ResourceType: "virtual_machine", Status: "maintenance",
			OrganizationID: org, LocationID: loc, Policies: []string{pol1, pol2, someID}, Manufacturer: "Dell", Model: "M",
			SerialNumber: "S1", AssetTag: "T1", Metadata: map[string]string{"rack": "r1", "env": "prod"}, Version: 30}, nil, ""},
		{"decommissioned from any status", api.Resource{Hostname: "a.example.com", ResourceType: "vm", Status: "decommissioned"},
			&api.Resource{ID: id, Hostname: "a.example.com", ResourceType: "virtual_machine", Status: "maintenance"}, []string{"change_status"}, ""},
		{"other hostname", api.Resource{Hostname: "a.example.com", ResourceType: "vm"},
			&api.Resource{ID: id, Hostname: "b.example.com", ResourceType: "virtual_machine", Status: "active"}, nil, "hostname"},
		{"other type", api.Resource{Hostname: "a.example.com", ResourceType: "vm"},
			&api.Resource{ID: id, Hostname: "a.example.com", ResourceType: "switch", Status: "active"}, nil, "resource_type"},
		{"status back", api.Resource{Hostname: "a.example.com", ResourceType: "vm", Status: "provisioning"},
			&api.Resource{ID: id, Hostname: "a.example.com", ResourceType: "virtual_machine", Status: "active"}, nil, "status"},
		{"activation without location", api.Resource{Hostname: "a.example.com", ResourceType: "vm", Status: "active", OrganizationID: org}, nil, nil, "status"},
		{"decommissioned changes", api.Resource{Hostname: "a.example.com", ResourceType: "vm", AssetTag: "T9"},
			&api.Resource{ID: id, Hostname: "a.example.com", ResourceType: "virtual_machine", Status: "decommissioned"}, nil, "asset_tag"},
		{"decommissioned unchanged", api.Resource{Hostname: "a.example.com", ResourceType: "vm", Status: "decommissioned"},
			&api.Resource{ID: id, Hostname: "a.example.com", ResourceType: "virtual_machine", Status: "decommissioned"}, nil, ""},
	} {
		steps, err := inventory.Plan(validRow(t, tc.row), tc.current)
		if tc.column != "" {
			var re *inventory.RowError
			if !errors.Is(err, inventory.ErrConflict) || !errors.As(err, &re) || re.Column != tc.column || re.Line != 2 {
				t.Errorf("%s: %v (%+v), want a conflict in column %s", tc.name, err, re, tc.column)
			}
			continue
		}
		if err != nil || !slices.Equal(commands(steps), tc.want) {
			t.Errorf("%s: %v, %v; want %v", tc.name, commands(steps), err, tc.want)
		}
	}
}

// TestPlanIDs: the same row from the same state gives the same command ids; from another state
// (version), other ids; every step of a plan has its own id; a row without id names the
// resource derived from its hostname.
func TestPlanIDs(t *testing.T) {
	t.Parallel()
	row := validRow(t, api.Resource{Hostname: "A.example.com", ResourceType: "vm", Status: "active", OrganizationID: org,
		LocationID: loc, Policies: []string{pol1, pol2}})
	if again := validRow(t, api.Resource{Hostname: "a.example.com.", ResourceType: "virtual_machine"}); again.ResourceID() != row.ResourceID() {
		t.Fatalf("ids from one hostname differ: %s, %s", again.ResourceID(), row.ResourceID())
	}
	if want := uuid.NewSHA1(inventory.Namespace, []byte("hostname:a.example.com")).String(); row.ResourceID() != want {
		t.Fatalf("resource id %s, want %s (documented derivation)", row.ResourceID(), want)
	}
	state := func(v uint64) *api.Resource {
		return &api.Resource{ID: row.ResourceID(), Hostname: "a.example.com", ResourceType: "virtual_machine", Status: "provisioning", Version: v}
	}
	ids := func(steps []inventory.Step, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range steps {
			switch r := s.Request.(type) {
			case *api.Register:
				out = append(out, r.CommandID)
			case *api.AssignOrganization:
				out = append(out, r.CommandID)
			case *api.AssignLocation:
				out = append(out, r.CommandID)
			case *api.AddPolicy:
				out = append(out, r.CommandID)
			case *api.ChangeStatus:
				out = append(out, r.CommandID)
			default:
				t.Fatalf("step %T", s.Request)
			}
		}
		return out
	}
	first, second, other := ids(inventory.Plan(row, state(5))), ids(inventory.Plan(row, state(5))), ids(inventory.Plan(row, state(6)))
	if len(first) != 5 || !slices.Equal(first, second) {
		t.Fatalf("plans from one state: %v, %v", first, second)
	}
	sorted := slices.Clone(first)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != len(first) {
		t.Errorf("a command id repeats within a plan: %v", first)
	}
	for i := range first {
		if first[i] == other[i] {
			t.Errorf("step %d has the same id from versions 5 and 6", i)
		}
	}
}
