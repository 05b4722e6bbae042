package queryservice

import (
	"bytes"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
)

// filter is an api.Filter checked and compiled: a predicate over rows, and the index lookups
// that find every row it can match (lookup), when one of its fields has an index.
type filter struct {
	orgs, locs, owners, concepts map[[16]byte]bool
	statuses, types, categories  map[string]bool
	policies                     []cr.PolicyID
	hostname, hostnamePrefix     string
	glob                         string
	assetTag, manufacturer       *string
	model, serial                *string
	metaKeys                     []string
	metaValues                   [][2]string
	createdFrom, createdTo       *time.Time
	updatedFrom, updatedTo       *time.Time
	q                            string

	lookup *lookup
}

// lookup names an index and the keys (prefixes) whose rows together hold every match; the
// metadata indexes take a key (and a value) instead.
type lookup struct {
	index              string
	keys               [][]byte
	metaKey, metaValue string
}

// compileFilter checks f and compiles it; an invalid value is a 400 naming its field.
func compileFilter(f api.Filter) (*filter, error) {
	c := &filter{}
	var err error
	if c.orgs, err = uuidSet("organization_id", f.OrganizationIDs); err != nil {
		return nil, err
	}
	if c.locs, err = uuidSet("location_id", f.LocationIDs); err != nil {
		return nil, err
	}
	if c.owners, err = uuidSet("owner_id", f.OwnerIDs); err != nil {
		return nil, err
	}
	if c.concepts, err = uuidSet("account_concept_id", f.AccountConceptIDs); err != nil {
		return nil, err
	}
	if c.statuses, err = nameSet("status", f.Statuses, func(s string) (string, error) {
		st, err := cr.ParseStatus(s)
		return st.String(), err
	}); err != nil {
		return nil, err
	}
	if c.types, err = nameSet("resource_type", f.ResourceTypes, func(s string) (string, error) {
		t, err := cr.ParseResourceType(s)
		return t.String(), err
	}); err != nil {
		return nil, err
	}
	if c.categories, err = nameSet("category", f.Categories, func(s string) (string, error) {
		cat, err := cr.ParseCategory(s)
		return cat.String(), err
	}); err != nil {
		return nil, err
	}
	for _, p := range f.Policies {
		id, err := uuid.Parse(p)
		if err != nil {
			return nil, invalidField("policy_id", "policy_id %q is not a UUID", shorten(p))
		}
		c.policies = append(c.policies, cr.PolicyID(id))
	}
	c.hostname, c.hostnamePrefix = lowerHostname(f.Hostname), strings.ToLower(f.HostnamePrefix)
	if f.HostnameGlob != "" {
		c.glob = strings.ToLower(f.HostnameGlob)
		if _, err := path.Match(c.glob, ""); err != nil {
			return nil, invalidField("hostname_glob", "hostname_glob %q is not a valid pattern: %v", shorten(f.HostnameGlob), err)
		}
	}
	c.assetTag, c.manufacturer = optional(f.AssetTag), optional(f.Manufacturer)
	c.model, c.serial = optional(f.Model), optional(f.SerialNumber)
	for _, m := range f.Metadata {
		k, v, hasValue := strings.Cut(m, "=")
		if k == "" {
			return nil, invalidField("metadata", "metadata entry %q has no key; use \"key\" or \"key=value\"", shorten(m))
		}
		if hasValue {
			c.metaValues = append(c.metaValues, [2]string{k, v})
		} else {
			c.metaKeys = append(c.metaKeys, k)
		}
	}
	c.createdFrom, c.createdTo = f.CreatedAfter, f.CreatedBefore
	c.updatedFrom, c.updatedTo = f.UpdatedAfter, f.UpdatedBefore
	if strings.ContainsRune(f.Q, sep) {
		return nil, invalidField("q", "q %q holds a NUL character, which no field's text contains", shorten(f.Q))
	}
	c.q = strings.ToLower(f.Q)
	c.lookup = c.plan()
	return c, nil
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func uuidSet(field string, values []string) (map[[16]byte]bool, error) {
	if len(values) == 0 {
		return nil, nil
	}
	set := make(map[[16]byte]bool, len(values))
	for _, v := range values {
		id, err := uuid.Parse(v)
		if err != nil {
			return nil, invalidField(field, "%s %q is not a UUID", field, shorten(v))
		}
		set[id] = true
	}
	return set, nil
}

func nameSet(field string, values []string, parse func(string) (string, error)) (map[string]bool, error) {
	if len(values) == 0 {
		return nil, nil
	}
	set := make(map[string]bool, len(values))
	for _, v := range values {
		name, err := parse(v)
		if err != nil {
			return nil, invalidField(field, "%s %q: %v", field, shorten(v), err)
		}
		set[name] = true
	}
	return set, nil
}

// plan picks the index that narrows the candidates most, as a rule of thumb: fields that are
// nearly unique first, then the small pools (owners, policies, locations), then the fields
// with few distinct values. Nil means no field has an index: every row is a candidate.
func (c *filter) plan() *lookup {
	str := func(index string, v *string) *lookup { return &lookup{index: index, keys: [][]byte{stringKey(*v)}} }
	uuids := func(index string, set map[[16]byte]bool) *lookup {
		l := &lookup{index: index}
		for id := range set {
			l.keys = append(l.keys, slices.Clone(id[:]))
		}
		return l
	}
	names := func(index string, set map[string]bool) *lookup {
		l := &lookup{index: index}
		for n := range set {
			l.keys = append(l.keys, stringKey(n))
		}
		return l
	}
	switch {
	case c.serial != nil:
		return str(api.OrderSerialNumber, c.serial)
	case c.assetTag != nil:
		return str(api.OrderAssetTag, c.assetTag)
	case c.hostname != "":
		return &lookup{index: api.OrderHostname, keys: [][]byte{stringKey(c.hostname)}}
	case len(c.metaValues) > 0:
		return &lookup{index: indexMetadataValue, metaKey: c.metaValues[0][0], metaValue: c.metaValues[0][1]}
	case len(c.q) >= minIndexedQ:
		return &lookup{index: indexText}
	case c.hostnamePrefix != "":
		return &lookup{index: api.OrderHostname, keys: [][]byte{[]byte(c.hostnamePrefix)}}
	case len(c.owners) > 0:
		return uuids(api.OrderOwnerID, c.owners)
	case len(c.concepts) > 0:
		return uuids(indexAccountConcept, c.concepts)
	case len(c.policies) > 0:
		return &lookup{index: indexPolicy, keys: [][]byte{slices.Clone(c.policies[0][:])}}
	case len(c.locs) > 0:
		return uuids(api.OrderLocationID, c.locs)
	case len(c.orgs) > 0:
		return uuids(api.OrderOrganizationID, c.orgs)
	case len(c.metaKeys) > 0:
		return &lookup{index: indexMetadataKey, metaKey: c.metaKeys[0]}
	case c.model != nil:
		return str(api.OrderModel, c.model)
	case c.manufacturer != nil:
		return str(api.OrderManufacturer, c.manufacturer)
	case len(c.types) > 0:
		return names(api.OrderResourceType, c.types)
	case len(c.categories) > 0:
		return names(api.OrderCategory, c.categories)
	case len(c.statuses) > 0:
		return names(api.OrderStatus, c.statuses)
	}
	return nil
}

// match reports whether r passes every condition of the filter.
func (c *filter) match(r *resource) bool { return c.matches(r, false) }

// matches is match; with byMetaIndex, for a row each found in the metadata index for the
// lookup's key (and value), it skips that condition, which the walk of the index checked.
func (c *filter) matches(r *resource, byMetaIndex bool) bool {
	if c.orgs != nil && !c.orgs[r.organizationID()] ||
		c.locs != nil && !c.locs[r.locationID()] ||
		c.owners != nil && !c.owners[r.ownerID()] ||
		c.concepts != nil && !c.concepts[r.accountConceptID()] {
		return false
	}
	if c.statuses != nil && !c.statuses[r.statusName()] ||
		c.types != nil && !c.types[r.typeName()] ||
		c.categories != nil && !c.categories[r.categoryName()] {
		return false
	}
	for _, p := range c.policies {
		if !r.hasPolicy([16]byte(p)) {
			return false
		}
	}
	if c.hostname != "" || c.hostnamePrefix != "" || c.glob != "" {
		host := r.hostname()
		if c.hostname != "" && host != c.hostname ||
			c.hostnamePrefix != "" && !strings.HasPrefix(host, c.hostnamePrefix) {
			return false
		}
		if c.glob != "" {
			if ok, _ := path.Match(c.glob, host); !ok {
				return false
			}
		}
	}
	if c.assetTag != nil && r.assetTag() != *c.assetTag || !equalOptional(c.manufacturer, r.manufacturer) ||
		!equalOptional(c.model, r.model) || !equalOptional(c.serial, r.serialNumber) {
		return false
	}
	keys, values := c.metaKeys, c.metaValues
	switch {
	case byMetaIndex && c.lookup.index == indexMetadataValue:
		values = values[1:] // the lookup's: c.metaValues[0]
	case byMetaIndex:
		keys = keys[1:] // c.metaKeys[0]
	}
	for _, k := range keys {
		if _, ok := r.metadataValue(k); !ok {
			return false
		}
	}
	for _, kv := range values {
		if v, ok := r.metadataValue(kv[0]); !ok || v != kv[1] {
			return false
		}
	}
	if !inRange(r.created, c.createdFrom, c.createdTo) || !inRange(r.updated, c.updatedFrom, c.updatedTo) {
		return false
	}
	return c.q == "" || r.containsText(c.q)
}

func equalOptional(want *string, get func() (string, bool)) bool {
	if want == nil {
		return true
	}
	v, ok := get()
	return ok && v == *want
}

// inRange: from inclusive, to exclusive; nil bounds are open.
func inRange(nanos int64, from, to *time.Time) bool {
	return (from == nil || nanos >= from.UnixNano()) && (to == nil || nanos < to.UnixNano())
}

// each calls fn with every row of the view the filter matches, in no particular order (the
// lookup's), until fn returns false.
func (c *filter) each(v View, fn func(*resource) bool) error {
	l := c.lookup
	if l == nil {
		return c.scan(v, api.OrderHostname, false, nil, fn)
	}
	visit := func(r *resource) bool { return !c.match(r) || fn(r) }
	switch l.index {
	case indexText:
		return c.eachText(v, fn)
	case indexPolicy:
		p := [16]byte(l.keys[0])
		probe := policyProbe(p)
		walk(v.t.policy, &probe, false, policyEntry.row, func(e policyEntry) bool {
			return e.policy() == p && visit(e.r)
		})
		return nil
	case indexMetadataValue:
		// The pair's entries are together, from the probe on, among those of its hash.
		probe := metaProbe(l.metaKey, l.metaValue)
		walk(v.t.meta, &probe, false, metaEntry.row, func(e metaEntry) bool {
			if e.hash != probe.hash {
				return false
			}
			key, value := e.entry()
			return key == l.metaKey && value == l.metaValue && (!c.matches(e.r, true) || fn(e.r))
		})
		return nil
	case indexMetadataKey:
		// The key's entries are among those of its hash's upper half, mixed with any other
		// key's of the same.
		probe := keyProbe(l.metaKey)
		walk(v.t.meta, &probe, false, metaEntry.row, func(e metaEntry) bool {
			if e.hash>>16 != probe.hash>>16 {
				return false
			}
			key, _ := e.entry()
			return key != l.metaKey || !c.matches(e.r, true) || fn(e.r)
		})
		return nil
	}
	tree, f, ok := v.t.order(l.index)
	if !ok {
		return fmt.Errorf("queryservice: no index %q", l.index)
	}
	for _, k := range l.keys {
		stop := false
		walk(tree, new(pivot(k)), false, self, func(r *resource) bool {
			if !bytes.HasPrefix(f.key(r), k) {
				return false
			}
			stop = !visit(r)
			return !stop
		})
		if stop {
			return nil
		}
	}
	return nil
}

// eachText is each with the text index's candidates for q.
func (c *filter) eachText(v View, fn func(*resource) bool) error {
	ids, ok := v.text.candidates(c.q, v.textGen)
	if !ok {
		return c.scan(v, api.OrderHostname, false, nil, fn)
	}
	for _, id := range ids {
		if r, ok := v.Resource(id); ok && c.match(r) && !fn(r) {
			return nil
		}
	}
	return nil
}

// scan calls fn with every matching row in the order of the sort field's index, from the first
// row after the key `after` (nil: from the start), until fn returns false.
func (c *filter) scan(v View, index string, desc bool, after []byte, fn func(*resource) bool) error {
	tree, f, ok := v.t.order(index)
	if !ok {
		return fmt.Errorf("queryservice: no index %q", index)
	}
	// The walk starts at the cursor's key: only its first row may be the cursor's own.
	first := after != nil
	visit := func(r *resource) bool {
		if first {
			first = false
			if bytes.Equal(rowKey(f, r), after) {
				return true
			}
		}
		return !c.match(r) || fn(r)
	}
	var from **resource
	if after != nil {
		from = new(pivot(after))
	}
	walk(tree, from, desc, self, visit)
	return nil
}

// rowKey is r's key in the sort field's index: the field's key and the id.
func rowKey(f sortField, r *resource) []byte {
	return append(f.key(r), r.data()[1:hostnameAt]...)
}
