package inventory

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
)

// Namespace is the UUID namespace of the ids an import derives: the resource id of a row without
// one (from its hostname) and the command ids of its steps. It never changes, so that the same
// file names the same resources and commands on every run.
var Namespace = uuid.MustParse("3c073fb6-4c7d-4fd7-871e-55a323dcea78")

// Row is one resource of an inventory file, in the shape the query service's list returns it
// (api.Resource), with the line it starts on. An empty field is a field not given: an import
// leaves it as it is (see Plan). CreatedAt, UpdatedAt and Version are written by an export and
// ignored by an import: the registry sets them.
type Row struct {
	// Line is the 1-based line of the file where the row starts.
	Line int
	api.Resource
}

// ErrInvalidRow is wrapped by every *RowError.
var ErrInvalidRow = errors.New("inventory: invalid row")

// RowError is a row that cannot be read or whose values are invalid. The other rows of the
// file are still read: a Reader returns it and goes on with the next row.
type RowError struct {
	Line int
	// Column names the column (the JSON field in JSON lines) at fault; empty when the row as a
	// whole is at fault (a CSV quote error, a line that is not a JSON object).
	Column string
	// ID and Hostname are the row's, as far as they could be read (for the report).
	ID, Hostname string
	Err          error
}

func (e *RowError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("line %d, column %s: %v", e.Line, e.Column, e.Err)
}

func (e *RowError) Unwrap() error { return e.Err }

// Is makes every *RowError match ErrInvalidRow.
func (e *RowError) Is(target error) bool { return target == ErrInvalidRow }

// ResourceID is the id of the resource a row describes: its id column, or, when that is empty,
// the name-based UUID (version 5) in Namespace of "hostname:" and its canonical (lower-case)
// hostname, so that a row without id names the same resource on every run. Call it on a
// validated row.
func (r Row) ResourceID() string {
	if r.ID != "" {
		return r.ID
	}
	return uuid.NewSHA1(Namespace, []byte("hostname:"+r.Hostname)).String()
}

// validationMeta stands in for the envelope of the domain commands that check a row's values:
// Validate needs one, and only the values are checked.
var validationMeta = cr.CommandMeta{CommandID: Namespace, Timestamp: time.Unix(1, 0)}

// Validate checks every value of the row with the domain's rules and writes back the canonical
// forms (lower-case hostname and ids, the canonical resource type for an alias, the type's
// category, a lower-case status); it refuses a row without hostname or resource type, a category
// other than its type's, and a policy given twice. The error is a *RowError naming the column.
func (r *Row) Validate() error {
	fail := func(column string, err error) error {
		return &RowError{Line: r.Line, Column: column, ID: r.ID, Hostname: r.Hostname, Err: err}
	}
	if r.ID != "" {
		id, err := uuid.Parse(r.ID)
		if err != nil || id == uuid.Nil {
			return fail("id", fmt.Errorf("%q is not a resource id (a UUID other than the nil UUID)", r.ID))
		}
		r.ID = id.String()
	}
	if r.Hostname == "" {
		return fail("hostname", errors.New("required"))
	}
	h, err := cr.ParseHostname(r.Hostname)
	if err != nil {
		return fail("hostname", err)
	}
	r.Hostname = h.String()
	if r.ResourceType == "" {
		return fail("resource_type", errors.New("required"))
	}
	typ, err := cr.ParseResourceType(r.ResourceType)
	if err != nil {
		return fail("resource_type", err)
	}
	r.ResourceType = typ.String()
	if r.Category != "" {
		c, err := cr.ParseCategory(r.Category)
		if err != nil {
			return fail("category", err)
		}
		if c != typ.Category() {
			return fail("category", fmt.Errorf("%q is not the category of %s (%s)", r.Category, typ, typ.Category()))
		}
	}
	r.Category = typ.Category().String()
	if r.Status != "" {
		s, err := cr.ParseStatus(r.Status)
		if err != nil {
			return fail("status", err)
		}
		r.Status = s.String()
	}
	ids := []struct {
		column string
		p      *string
		parse  func(string) (fmt.Stringer, error)
	}{
		{"organization_id", &r.OrganizationID, func(s string) (fmt.Stringer, error) { return cr.ParseOrganizationID(s) }},
		{"location_id", &r.LocationID, func(s string) (fmt.Stringer, error) { return cr.ParseLocationID(s) }},
		{"owner_id", &r.OwnerID, func(s string) (fmt.Stringer, error) { return cr.ParsePersonID(s) }},
		{"account_concept_id", &r.AccountConceptID, func(s string) (fmt.Stringer, error) { return cr.ParseAccountConceptID(s) }},
	}
	for _, f := range ids {
		if *f.p == "" {
			continue
		}
		v, err := f.parse(*f.p)
		if err != nil {
			return fail(f.column, err)
		}
		*f.p = v.String()
	}
	policies := make([]string, 0, len(r.Policies))
	for _, p := range r.Policies {
		id, err := cr.ParsePolicyID(p)
		if err != nil {
			return fail("policies", err)
		}
		policies = append(policies, id.String())
	}
	slices.Sort(policies)
	if i := duplicateIndex(policies); i >= 0 {
		return fail("policies", fmt.Errorf("policy %s is given twice", policies[i]))
	}
	r.Policies = policies
	hw := cr.SetHardwareDetails{Meta: validationMeta, ID: Namespace, Manufacturer: given(r.Manufacturer),
		Model: given(r.Model), SerialNumber: given(r.SerialNumber)}
	if hw.Manufacturer != nil || hw.Model != nil || hw.SerialNumber != nil {
		if err := cr.Validate(hw); err != nil {
			return fail(fieldOf(err, "manufacturer"), err)
		}
	}
	if r.AssetTag != "" {
		if err := cr.Validate(cr.AssignAssetTag{Meta: validationMeta, ID: Namespace, AssetTag: r.AssetTag}); err != nil {
			return fail("asset_tag", err)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(r.Metadata)) {
		if err := cr.Validate(cr.UpdateMetadata{Meta: validationMeta, ID: Namespace, Key: k, Value: r.Metadata[k]}); err != nil {
			return fail("metadata", err)
		}
	}
	return nil
}

// fieldOf returns the field a domain error names, mapped to its column, or def.
func fieldOf(err error, def string) string {
	var fe *cr.FieldError
	if !errors.As(err, &fe) {
		return def
	}
	switch fe.Field {
	case "manufacturer", "model", "serial_number":
		return fe.Field
	}
	return def
}

func given(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// duplicateIndex returns the index of an element of the sorted s equal to the one before it, or -1.
func duplicateIndex(s []string) int {
	for i := 1; i < len(s); i++ {
		if s[i] == s[i-1] {
			return i
		}
	}
	return -1
}
