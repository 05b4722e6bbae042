package inventory

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
)

// ErrConflict is wrapped by the error of a row describing a resource that exists in a state the
// row cannot bring it to with the commands there are: another hostname or type, a status the
// status graph cannot reach from the current one, a decommissioned resource that would change,
// or an activation without organization and location.
var ErrConflict = errors.New("inventory: the row conflicts with the resource")

// Step is one command of a row's plan.
type Step struct {
	// Command is the command's name (api.Cmd*), the last token of its subject.
	Command string
	// Request is a pointer to the api command, its envelope set: a command id derived from the
	// resource, the state it was planned from and the step, and the correlation id of the plan.
	Request any
}

// Plan returns the commands that bring the resource of a validated row from current, its state
// in the registry (nil: not registered), to the row's values:
//
//   - register, when current is nil;
//   - each field the row gives that differs from current: organization, location, owner,
//     account concept, one set_hardware_details for the hardware fields, asset tag;
//   - add_policy for each of the row's policies the resource lacks;
//   - update_metadata for each of the row's metadata keys with another value or none;
//   - change_status along the status graph to the row's status, last (provisioning, then
//     active, then maintenance; decommissioned from any other status).
//
// An import only adds and sets: a field the row leaves empty, a policy or a metadata key it
// does not list are left as they are. A row whose resource exists with another hostname or
// type, in a status the row's cannot be reached from, or decommissioned while the row would
// change it, is refused with ErrConflict, as is a row that would activate a resource without
// organization and location. The error is a *RowError. No steps and no error: the resource
// is already as the row says.
//
// The command ids are name-based UUIDs (version 5) in Namespace of the resource id, the
// version of current and the step (its command and value): planning the same row from the
// same state gives the same ids, so a re-sent plan is answered as duplicates and writes
// nothing twice. After register, plan again from the registered state for the other steps
// (Import does).
func Plan(row Row, current *api.Resource) ([]Step, error) { return plan(row, current, false) }

// plan is Plan; with clientIDs, the steps carry no command id, for the client to make one up
// and tell the service that it is new (see importRow).
func plan(row Row, current *api.Resource, clientIDs bool) ([]Step, error) {
	id := row.ResourceID()
	fail := func(column string, err error) error {
		return &RowError{Line: row.Line, Column: column, ID: id, Hostname: row.Hostname, Err: err}
	}
	p := planner{id: id, clientIDs: clientIDs}
	if current == nil {
		p.add(api.CmdRegister, &api.Register{Envelope: p.envelope(api.CmdRegister, row.Hostname+"\x00"+row.ResourceType), AggregateID: id,
			Hostname: row.Hostname, ResourceType: row.ResourceType})
		current = &api.Resource{ID: id, Hostname: row.Hostname, ResourceType: row.ResourceType,
			Status: cr.StatusProvisioning.String()}
	} else {
		p.version = current.Version
		switch {
		case current.Hostname != row.Hostname:
			return nil, fail("hostname", fmt.Errorf("%w: resource %s has the hostname %q, the row %q", ErrConflict, id, current.Hostname, row.Hostname))
		case current.ResourceType != row.ResourceType:
			return nil, fail("resource_type", fmt.Errorf("%w: resource %s has the type %s, the row %s", ErrConflict, id, current.ResourceType, row.ResourceType))
		}
	}
	if differs(row.OrganizationID, current.OrganizationID) {
		p.add(api.CmdAssignOrganization, &api.AssignOrganization{Target: p.target(api.CmdAssignOrganization, row.OrganizationID), OrganizationID: row.OrganizationID})
	}
	if differs(row.LocationID, current.LocationID) {
		p.add(api.CmdAssignLocation, &api.AssignLocation{Target: p.target(api.CmdAssignLocation, row.LocationID), LocationID: row.LocationID})
	}
	if differs(row.OwnerID, current.OwnerID) {
		p.add(api.CmdAssignOwner, &api.AssignOwner{Target: p.target(api.CmdAssignOwner, row.OwnerID), OwnerID: row.OwnerID})
	}
	if differs(row.AccountConceptID, current.AccountConceptID) {
		p.add(api.CmdAssignAccountConcept, &api.AssignAccountConcept{Target: p.target(api.CmdAssignAccountConcept, row.AccountConceptID), ConceptID: row.AccountConceptID})
	}
	var hw api.SetHardwareDetails
	if differs(row.Manufacturer, current.Manufacturer) {
		hw.Manufacturer = &row.Manufacturer
	}
	if differs(row.Model, current.Model) {
		hw.Model = &row.Model
	}
	if differs(row.SerialNumber, current.SerialNumber) {
		hw.SerialNumber = &row.SerialNumber
	}
	if hw.Manufacturer != nil || hw.Model != nil || hw.SerialNumber != nil {
		hw.Target = p.target(api.CmdSetHardwareDetails, deref(hw.Manufacturer)+"\x00"+deref(hw.Model)+"\x00"+deref(hw.SerialNumber))
		p.add(api.CmdSetHardwareDetails, &hw)
	}
	if differs(row.AssetTag, current.AssetTag) {
		p.add(api.CmdAssignAssetTag, &api.AssignAssetTag{Target: p.target(api.CmdAssignAssetTag, row.AssetTag), AssetTag: row.AssetTag})
	}
	for _, policy := range row.Policies {
		if !slices.Contains(current.Policies, policy) {
			p.add(api.CmdAddPolicy, &api.AddPolicy{Target: p.target(api.CmdAddPolicy, policy), PolicyID: policy})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(row.Metadata)) {
		if v, ok := current.Metadata[k]; !ok || v != row.Metadata[k] {
			p.add(api.CmdUpdateMetadata, &api.UpdateMetadata{Target: p.target(api.CmdUpdateMetadata, k+"="+row.Metadata[k]), Key: k, Value: row.Metadata[k]})
		}
	}
	if row.Status != "" && row.Status != current.Status {
		path, err := statusPath(current.Status, row.Status)
		if err != nil {
			return nil, fail("status", fmt.Errorf("%w: resource %s: %w", ErrConflict, id, err))
		}
		if current.Status == cr.StatusProvisioning.String() && path[0] == cr.StatusActive.String() &&
			(firstOf(row.OrganizationID, current.OrganizationID) == "" || firstOf(row.LocationID, current.LocationID) == "") {
			return nil, fail("status", fmt.Errorf("%w: status %s needs an organization_id and a location_id to activate the resource", ErrConflict, row.Status))
		}
		from := current.Status
		for _, s := range path {
			p.add(api.CmdChangeStatus, &api.ChangeStatus{Target: p.target(api.CmdChangeStatus, from+">"+s), Status: s})
			from = s
		}
	}
	if current.Status == cr.StatusDecommissioned.String() && len(p.steps) > 0 {
		return nil, fail(columnOf(p.steps[0].Command), fmt.Errorf("%w: resource %s is decommissioned: the registry refuses every change (first: %s)", ErrConflict, id, p.steps[0].Command))
	}
	return p.steps, nil
}

// planner collects the steps of a plan and gives each its envelope.
type planner struct {
	id        string
	version   uint64
	clientIDs bool
	steps     []Step
}

func (p *planner) add(command string, req any) {
	p.steps = append(p.steps, Step{Command: command, Request: req})
}

// envelope is the envelope of the step that sends command with value.
func (p *planner) envelope(command, value string) api.Envelope {
	base := p.id + "\x00" + strconv.FormatUint(p.version, 10) + "\x00"
	env := api.Envelope{CorrelationID: uuid.NewSHA1(Namespace, []byte(p.id+"\x00import")).String()}
	if !p.clientIDs {
		env.CommandID = uuid.NewSHA1(Namespace, []byte(base+command+"\x00"+value)).String()
	}
	return env
}

func (p *planner) target(command, value string) api.Target {
	return api.Target{Envelope: p.envelope(command, value), AggregateID: p.id}
}

// statusPath returns the statuses to change to, in order, to go from one status to another
// along the status graph (the shortest way).
func statusPath(from, to string) ([]string, error) {
	start, err := cr.ParseStatus(from)
	if err != nil {
		return nil, err
	}
	goal, err := cr.ParseStatus(to)
	if err != nil {
		return nil, err
	}
	prev := map[cr.Status]cr.Status{start: {}}
	queue := []cr.Status{start}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if s == goal {
			var path []string
			for ; s != start; s = prev[s] {
				path = append([]string{s.String()}, path...)
			}
			return path, nil
		}
		for _, next := range cr.Statuses() {
			if _, seen := prev[next]; !seen && s.CanTransitionTo(next) {
				prev[next] = s
				queue = append(queue, next)
			}
		}
	}
	return nil, fmt.Errorf("status %s cannot be reached from %s", goal, start)
}

// columnOf is the column of the value a command sets.
func columnOf(command string) string {
	switch command {
	case api.CmdAssignOrganization:
		return "organization_id"
	case api.CmdAssignLocation:
		return "location_id"
	case api.CmdAssignOwner:
		return "owner_id"
	case api.CmdAssignAccountConcept:
		return "account_concept_id"
	case api.CmdSetHardwareDetails:
		return "manufacturer"
	case api.CmdAssignAssetTag:
		return "asset_tag"
	case api.CmdAddPolicy:
		return "policies"
	case api.CmdUpdateMetadata:
		return "metadata"
	}
	return "status"
}

// differs reports whether the row gives a value other than the current one.
func differs(row, current string) bool { return row != "" && row != current }

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
