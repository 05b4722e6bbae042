package api

import cr "github.com/cim-infra/registry/domain/computeresource"

// ResourceOf renders a resource's state, folded up to the stream sequence version, as queries
// return it: the command service's get and the query service's list give the same body for
// the same state.
func ResourceOf(st cr.State, version uint64) Resource {
	r := Resource{
		ID:           st.ID().String(),
		Hostname:     st.Hostname().String(),
		ResourceType: st.Type().String(),
		Category:     st.Type().Category().String(),
		Status:       st.Status().String(),
		Policies:     []string{},
		Metadata:     st.Metadata(),
		CreatedAt:    st.CreatedAt(),
		UpdatedAt:    st.UpdatedAt(),
		Version:      version,
	}
	if id, ok := st.OrganizationID(); ok {
		r.OrganizationID = id.String()
	}
	if id, ok := st.LocationID(); ok {
		r.LocationID = id.String()
	}
	if id, ok := st.OwnerID(); ok {
		r.OwnerID = id.String()
	}
	if id, ok := st.AccountConceptID(); ok {
		r.AccountConceptID = id.String()
	}
	for _, p := range st.Policies() {
		r.Policies = append(r.Policies, p.String())
	}
	r.Manufacturer, _ = st.Manufacturer()
	r.Model, _ = st.Model()
	r.SerialNumber, _ = st.SerialNumber()
	r.AssetTag, _ = st.AssetTag()
	return r
}
