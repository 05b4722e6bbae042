package queryservice

import (
	"cmp"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
)

// expected renders the fold of every registered resource as the wire's rows, independently of
// the service's code: the oracle of the filter and order tests.
func (e *env) expected() []api.Resource {
	var out []api.Resource
	for id, st := range e.states {
		if !st.Registered() {
			continue
		}
		r := api.Resource{ID: id.String(), Hostname: st.Hostname().String(), ResourceType: st.Type().String(),
			Category: st.Type().Category().String(), Status: st.Status().String(), Metadata: st.Metadata(),
			CreatedAt: st.CreatedAt(), UpdatedAt: st.UpdatedAt(), Version: e.version[id]}
		if v, ok := st.OrganizationID(); ok {
			r.OrganizationID = v.String()
		}
		if v, ok := st.LocationID(); ok {
			r.LocationID = v.String()
		}
		if v, ok := st.OwnerID(); ok {
			r.OwnerID = v.String()
		}
		if v, ok := st.AccountConceptID(); ok {
			r.AccountConceptID = v.String()
		}
		for _, p := range st.Policies() {
			r.Policies = append(r.Policies, p.String())
		}
		r.Manufacturer, _ = st.Manufacturer()
		r.Model, _ = st.Model()
		r.SerialNumber, _ = st.SerialNumber()
		r.AssetTag, _ = st.AssetTag()
		out = append(out, r)
	}
	return out
}

// oracle is the filter's meaning, written out plainly over the wire's rows.
func oracle(f api.Filter, r api.Resource) bool {
	anyOf := func(values []string, v string) bool { return len(values) == 0 || slices.Contains(values, v) }
	exact := func(want, v string) bool { return want == "" || want == v }
	if !anyOf(f.OrganizationIDs, r.OrganizationID) || !anyOf(f.LocationIDs, r.LocationID) ||
		!anyOf(f.OwnerIDs, r.OwnerID) || !anyOf(f.AccountConceptIDs, r.AccountConceptID) ||
		!anyOf(f.Statuses, r.Status) || !anyOf(f.ResourceTypes, r.ResourceType) || !anyOf(f.Categories, r.Category) {
		return false
	}
	for _, p := range f.Policies {
		if !slices.Contains(r.Policies, p) {
			return false
		}
	}
	if !exact(strings.ToLower(f.Hostname), r.Hostname) || !strings.HasPrefix(r.Hostname, strings.ToLower(f.HostnamePrefix)) {
		return false
	}
	if f.HostnameGlob != "" {
		if ok, _ := path.Match(strings.ToLower(f.HostnameGlob), r.Hostname); !ok {
			return false
		}
	}
	if !exact(f.AssetTag, r.AssetTag) || !exact(f.Manufacturer, r.Manufacturer) || !exact(f.Model, r.Model) || !exact(f.SerialNumber, r.SerialNumber) {
		return false
	}
	for _, m := range f.Metadata {
		k, v, hasValue := strings.Cut(m, "=")
		got, ok := r.Metadata[k]
		if !ok || hasValue && got != v {
			return false
		}
	}
	after := func(t time.Time, bound *time.Time) bool { return bound == nil || !t.Before(*bound) }
	before := func(t time.Time, bound *time.Time) bool { return bound == nil || t.Before(*bound) }
	if !after(r.CreatedAt, f.CreatedAfter) || !before(r.CreatedAt, f.CreatedBefore) ||
		!after(r.UpdatedAt, f.UpdatedAfter) || !before(r.UpdatedAt, f.UpdatedBefore) {
		return false
	}
	if f.Q != "" {
		q := strings.ToLower(f.Q)
		texts := []string{r.Hostname, r.AssetTag, r.SerialNumber, r.Model}
		for _, v := range r.Metadata {
			texts = append(texts, v)
		}
		found := false
		for _, t := range texts {
			found = found || strings.Contains(strings.ToLower(t), q)
		}
		if !found {
			return false
		}
	}
	return true
}

func ids(rows []api.Resource) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.ID
	}
	slices.Sort(out)
	return out
}

// TestListFilters checks every filter, alone and combined, against the oracle over a random
// history: the rows (through several pages), the total, and count by status.
func TestListFilters(t *testing.T) {
	e := newEnv(t, 11, 150)
	e.write(1500)
	in := e.startReady(testOptions())
	e.waitSeq(in, e.head)
	all := e.expected()

	// Values that occur, so that every case selects something.
	some := func(get func(api.Resource) string) string {
		for _, r := range all {
			if v := get(r); v != "" {
				return v
			}
		}
		t.Fatal("no resource has the value")
		return ""
	}
	org := some(func(r api.Resource) string { return r.OrganizationID })
	org2 := ""
	for _, r := range all {
		if r.OrganizationID != "" && r.OrganizationID != org {
			org2 = r.OrganizationID
		}
	}
	loc := some(func(r api.Resource) string { return r.LocationID })
	owner := some(func(r api.Resource) string { return r.OwnerID })
	concept := some(func(r api.Resource) string { return r.AccountConceptID })
	policy := some(func(r api.Resource) string {
		if len(r.Policies) > 1 {
			return r.Policies[0]
		}
		return ""
	})
	var policies []string
	for _, r := range all {
		if len(r.Policies) > 1 {
			policies = r.Policies[:2]
			break
		}
	}
	host := some(func(r api.Resource) string { return r.Hostname })
	tag := some(func(r api.Resource) string { return r.AssetTag })
	serial := some(func(r api.Resource) string { return r.SerialNumber })
	model := some(func(r api.Resource) string { return r.Model })
	mdKey, mdValue := "", ""
	for _, r := range all {
		_, env := r.Metadata["env"]
		if v, ok := r.Metadata["rack"]; ok && env {
			mdKey, mdValue = "rack", v
			break
		}
	}
	var combined api.Filter
	for _, r := range all {
		if r.Manufacturer != "" && r.OrganizationID != "" && r.Status != "provisioning" {
			combined = api.Filter{Statuses: []string{r.Status, "provisioning"}, OrganizationIDs: []string{r.OrganizationID}, Manufacturer: r.Manufacturer}
			break
		}
	}
	created := make([]time.Time, len(all))
	updated := make([]time.Time, len(all))
	for i, r := range all {
		created[i], updated[i] = r.CreatedAt, r.UpdatedAt
	}
	slices.SortFunc(created, time.Time.Compare)
	slices.SortFunc(updated, time.Time.Compare)
	mid := created[len(created)/2]
	updFrom, updTo := updated[len(updated)/4], updated[3*len(updated)/4]

	cases := []struct {
		name string
		f    api.Filter
	}{
		{"none", api.Filter{}},
		{"organization", api.Filter{OrganizationIDs: []string{org}}},
		{"two organizations", api.Filter{OrganizationIDs: []string{org, org2}}},
		{"location", api.Filter{LocationIDs: []string{loc}}},
		{"owner", api.Filter{OwnerIDs: []string{owner}}},
		{"account concept", api.Filter{AccountConceptIDs: []string{concept}}},
		{"status", api.Filter{Statuses: []string{"active"}}},
		{"statuses", api.Filter{Statuses: []string{"maintenance", "decommissioned"}}},
		{"resource type", api.Filter{ResourceTypes: []string{all[0].ResourceType, all[1].ResourceType}}},
		{"category", api.Filter{Categories: []string{"network"}}},
		{"policy", api.Filter{Policies: []string{policy}}},
		{"every policy", api.Filter{Policies: policies}},
		{"hostname", api.Filter{Hostname: strings.ToUpper(host)}},
		{"hostname prefix", api.Filter{HostnamePrefix: "HOST-" + host[5:6]}},
		{"hostname glob", api.Filter{HostnameGlob: "host-*.dc[12].EXAMPLE.com"}},
		{"asset tag", api.Filter{AssetTag: tag}},
		{"manufacturer", api.Filter{Manufacturer: "Dell"}},
		{"model", api.Filter{Model: model}},
		{"serial number", api.Filter{SerialNumber: serial}},
		{"metadata key", api.Filter{Metadata: []string{"team"}}},
		{"metadata key=value", api.Filter{Metadata: []string{mdKey + "=" + mdValue}}},
		{"metadata both", api.Filter{Metadata: []string{"env", mdKey + "=" + mdValue}}},
		{"created range", api.Filter{CreatedAfter: &mid}},
		{"created before", api.Filter{CreatedBefore: &mid}},
		{"updated range", api.Filter{UpdatedAfter: &updFrom, UpdatedBefore: &updTo}},
		{"created at an exact bound", api.Filter{CreatedAfter: &created[10], CreatedBefore: &created[11]}},
		{"q hostname", api.Filter{Q: "DC3.ex"}},
		{"q serial", api.Filter{Q: serial[2:7]}},
		{"q metadata value", api.Filter{Q: mdValue}},
		{"q asset tag", api.Filter{Q: strings.ToLower(tag)}},
		{"combined", combined},
		{"combined with q", api.Filter{Categories: []string{"compute", "network", "security"}, Q: ".dc1."}},
		{"nothing", api.Filter{Hostname: "no-such-host.example.com"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var want []api.Resource
			for _, r := range all {
				if oracle(c.f, r) {
					want = append(want, r)
				}
			}
			if c.name != "nothing" && len(want) == 0 {
				t.Fatalf("the case selects nothing; pick a value that occurs")
			}
			if c.name != "none" && len(want) == len(all) {
				t.Fatalf("the case selects everything (%d); pick a narrower value", len(all))
			}
			rows, page := e.listAll(api.List{Filter: c.f, Limit: 7})
			if got, want := ids(rows), ids(want); !slices.Equal(got, want) {
				t.Fatalf("list returned %d rows, the oracle %d\ngot  %v\nwant %v", len(got), len(want), got, want)
			}
			if page.Total != len(want) {
				t.Fatalf("total %d, want %d", page.Total, len(want))
			}
			var counts api.Counts
			e.query(api.QueryCount, api.Count{Filter: c.f, By: api.CountByStatus}, &counts)
			byStatus := map[string]int{}
			for _, r := range want {
				byStatus[r.Status]++
			}
			if counts.Total != len(want) || len(counts.Groups) != len(byStatus) {
				t.Fatalf("count %+v, want total %d in %v", counts, len(want), byStatus)
			}
			for _, g := range counts.Groups {
				if byStatus[g.Value] != g.Count {
					t.Fatalf("count of %s: %d, want %d", g.Value, g.Count, byStatus[g.Value])
				}
			}
		})
	}
}

// orderKey gives the oracle's comparison of two rows for a sort field: the field's value, then
// the id's bytes.
func orderKey(field string) func(a, b api.Resource) int {
	uuidBytes := func(s string) string {
		if s == "" {
			return string(make([]byte, 16))
		}
		u := uuid.MustParse(s)
		return string(u[:])
	}
	value := map[string]func(api.Resource) string{
		api.OrderHostname:       func(r api.Resource) string { return r.Hostname },
		api.OrderStatus:         func(r api.Resource) string { return r.Status },
		api.OrderResourceType:   func(r api.Resource) string { return r.ResourceType },
		api.OrderCategory:       func(r api.Resource) string { return r.Category },
		api.OrderOrganizationID: func(r api.Resource) string { return uuidBytes(r.OrganizationID) },
		api.OrderLocationID:     func(r api.Resource) string { return uuidBytes(r.LocationID) },
		api.OrderOwnerID:        func(r api.Resource) string { return uuidBytes(r.OwnerID) },
		api.OrderAssetTag:       func(r api.Resource) string { return r.AssetTag },
		api.OrderSerialNumber:   func(r api.Resource) string { return r.SerialNumber },
		api.OrderManufacturer:   func(r api.Resource) string { return r.Manufacturer },
		api.OrderModel:          func(r api.Resource) string { return r.Model },
	}
	return func(a, b api.Resource) int {
		var c int
		switch field {
		case api.OrderCreatedAt:
			c = a.CreatedAt.Compare(b.CreatedAt)
		case api.OrderUpdatedAt:
			c = a.UpdatedAt.Compare(b.UpdatedAt)
		case api.OrderVersion:
			c = cmp.Compare(a.Version, b.Version)
		default:
			c = strings.Compare(value[field](a), value[field](b))
		}
		if c != 0 {
			return c
		}
		return strings.Compare(uuidBytes(a.ID), uuidBytes(b.ID))
	}
}

// TestListOrder checks every sort field in both directions, through pages, with and without a
// filter that has an index (the two ways list finds rows), against the oracle's order.
func TestListOrder(t *testing.T) {
	e := newEnv(t, 12, 80)
	e.write(700)
	in := e.startReady(testOptions())
	e.waitSeq(in, e.head)
	all := e.expected()
	for _, field := range api.OrderFields() {
		for _, desc := range []bool{false, true} {
			for _, f := range []api.Filter{{}, {Statuses: []string{"active", "maintenance", "provisioning"}}} {
				var want []api.Resource
				for _, r := range all {
					if oracle(f, r) {
						want = append(want, r)
					}
				}
				cmpRows := orderKey(field)
				orderBy := field
				if desc {
					orderBy = "-" + field
					slices.SortFunc(want, func(a, b api.Resource) int { return cmpRows(b, a) })
				} else {
					slices.SortFunc(want, cmpRows)
				}
				q := api.List{Filter: f, OrderBy: orderBy, Limit: 9}
				if field == api.OrderHostname && !desc && len(f.Statuses) == 0 {
					q.OrderBy = "" // the default order
				}
				rows, _ := e.listAll(q)
				got := make([]string, len(rows))
				for i, r := range rows {
					got[i] = r.ID
				}
				wantIDs := make([]string, len(want))
				for i, r := range want {
					wantIDs[i] = r.ID
				}
				if !slices.Equal(got, wantIDs) {
					t.Fatalf("order_by %q, filter %+v: order differs from the oracle's\ngot  %v\nwant %v", orderBy, f, got, wantIDs)
				}
			}
		}
	}
}

// TestCountBy checks every grouping field against the oracle.
func TestCountBy(t *testing.T) {
	e := newEnv(t, 13, 60)
	e.write(500)
	in := e.startReady(testOptions())
	e.waitSeq(in, e.head)
	all := e.expected()
	value := map[string]func(api.Resource) string{
		api.CountByStatus:         func(r api.Resource) string { return r.Status },
		api.CountByResourceType:   func(r api.Resource) string { return r.ResourceType },
		api.CountByCategory:       func(r api.Resource) string { return r.Category },
		api.CountByOrganizationID: func(r api.Resource) string { return r.OrganizationID },
		api.CountByLocationID:     func(r api.Resource) string { return r.LocationID },
	}
	for _, by := range api.CountFields() {
		want := map[string]int{}
		for _, r := range all {
			want[value[by](r)]++
		}
		var got api.Counts
		e.query(api.QueryCount, api.Count{By: by}, &got)
		if got.By != by || got.Total != len(all) || len(got.Groups) != len(want) || got.AsOfSequence < e.head {
			t.Fatalf("count by %s: %+v, want %d groups, total %d", by, got, len(want), len(all))
		}
		for i, g := range got.Groups {
			if want[g.Value] != g.Count || i > 0 && got.Groups[i-1].Value >= g.Value {
				t.Fatalf("count by %s: group %q count %d, want %d, in order of value", by, g.Value, g.Count, want[g.Value])
			}
		}
	}
}
