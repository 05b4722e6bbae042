package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cim-infra/registry/pkg/api"
)

// ManagedBy is the metadata key, and Tool its value, that mark the resources this tool
// registered: it decommissions only those when they leave the inventory, never another tool's.
const (
	ManagedBy = "managed_by"
	Tool      = "inventory-sync"
)

// Report counts what a sync did (or, in a dry run, would do).
type Report struct {
	Registered, Updated, Decommissioned, Unchanged int
	// Actions lists every command, "<command> <hostname>[ <value>]", in the order sent.
	Actions []string
}

// Syncer keeps the registry in step with an inventory, through the command and query services'
// client only.
type Syncer struct {
	Client *api.Client
	// DryRun reports the actions without sending them.
	DryRun bool
}

// Sync brings the registry in step with hosts: it registers the hosts it does not know, moves
// each known one's organization, location, asset tag and status to the inventory's, and
// decommissions the resources it manages that the inventory no longer lists. Running it again
// with the same inventory changes nothing.
func (s *Syncer) Sync(ctx context.Context, hosts []Host) (Report, error) {
	var rep Report
	live, err := s.liveResources(ctx)
	if err != nil {
		return rep, err
	}
	listed := map[string]bool{}
	for _, h := range hosts {
		key := strings.ToLower(h.Hostname)
		listed[key] = true
		res, known := live[key]
		if !known {
			var holder string
			res, holder, err = s.register(ctx, h, &rep)
			if err != nil {
				return rep, err
			}
			if holder == "" {
				rep.Registered++
			} else if res, err = s.adopt(ctx, holder); err != nil {
				return rep, err
			} else {
				known = true
			}
		}
		changed, err := s.update(ctx, h, res, &rep)
		if err != nil {
			return rep, err
		}
		switch {
		case !known:
		case changed:
			rep.Updated++
		default:
			rep.Unchanged++
		}
	}
	for key, res := range live {
		if listed[key] || res.Metadata[ManagedBy] != Tool {
			continue
		}
		if err := s.send(&rep, "decommission", res.Hostname, "", func() error {
			_, err := s.Client.ChangeStatus(ctx, api.ChangeStatus{Target: target(res), Status: "decommissioned"})
			return err
		}); err != nil {
			return rep, err
		}
		rep.Decommissioned++
	}
	return rep, nil
}

// liveResources returns the resources that are not decommissioned, by lower-case hostname,
// as the command service has them now: the query service's list finds them, and a read of each
// through the command service gives its current state (the list's model may be a moment behind).
func (s *Syncer) liveResources(ctx context.Context) (map[string]api.Resource, error) {
	all, err := s.Client.ListAll(ctx, api.List{Filter: api.Filter{Statuses: []string{"provisioning", "active", "maintenance"}}})
	if err != nil {
		return nil, fmt.Errorf("list resources: %w", err)
	}
	live := make(map[string]api.Resource, len(all))
	for _, r := range all {
		cur, err := s.Client.Get(ctx, api.Get{AggregateID: r.ID})
		if err != nil {
			return nil, fmt.Errorf("get %s: %w", r.Hostname, err)
		}
		if cur.Status != "decommissioned" {
			live[strings.ToLower(cur.Hostname)] = *cur
		}
	}
	return live, nil
}

// register registers h and marks it as this tool's. When a live resource has the hostname
// already (one the list did not show yet: the query service's model is a moment behind the
// writes), it returns that resource's id as holder instead.
func (s *Syncer) register(ctx context.Context, h Host, rep *Report) (res api.Resource, holder string, err error) {
	res = api.Resource{Hostname: h.Hostname, ResourceType: h.ResourceType, Status: "provisioning"}
	err = s.send(rep, "register", h.Hostname, h.ResourceType, func() error {
		reply, err := s.Client.Register(ctx, api.Register{Hostname: h.Hostname, ResourceType: h.ResourceType})
		var taken *api.Error
		if errors.As(err, &taken) && taken.Kind == api.KindHostnameTaken {
			holder, _ = taken.Details["holder_id"].(string)
			if holder != "" {
				rep.Actions = rep.Actions[:len(rep.Actions)-1] // nothing was sent after all
				return nil
			}
		}
		if err != nil {
			return err
		}
		res.ID = reply.AggregateID
		_, err = s.Client.UpdateMetadata(ctx, api.UpdateMetadata{Target: target(res), Key: ManagedBy, Value: Tool})
		return err
	})
	return res, holder, err
}

// adopt reads the current state of the resource that holds a hostname of the inventory.
func (s *Syncer) adopt(ctx context.Context, id string) (api.Resource, error) {
	res, err := s.Client.Get(ctx, api.Get{AggregateID: id})
	if err != nil {
		return api.Resource{}, fmt.Errorf("get %s: %w", id, err)
	}
	return *res, nil
}

// update sends the commands that move res to h, the status last (activation needs the
// organization and location first).
func (s *Syncer) update(ctx context.Context, h Host, res api.Resource, rep *Report) (bool, error) {
	changed := false
	step := func(name, value string, want bool, send func() error) error {
		if !want {
			return nil
		}
		changed = true
		return s.send(rep, name, h.Hostname, value, send)
	}
	t := target(res)
	status := h.Status
	for _, err := range []func() error{
		func() error {
			return step("assign-organization", h.OrganizationID, h.OrganizationID != "" && h.OrganizationID != res.OrganizationID, func() error {
				_, err := s.Client.AssignOrganization(ctx, api.AssignOrganization{Target: t, OrganizationID: h.OrganizationID})
				return err
			})
		},
		func() error {
			return step("assign-location", h.LocationID, h.LocationID != "" && h.LocationID != res.LocationID, func() error {
				_, err := s.Client.AssignLocation(ctx, api.AssignLocation{Target: t, LocationID: h.LocationID})
				return err
			})
		},
		func() error {
			return step("assign-asset-tag", h.AssetTag, h.AssetTag != "" && h.AssetTag != res.AssetTag, func() error {
				_, err := s.Client.AssignAssetTag(ctx, api.AssignAssetTag{Target: t, AssetTag: h.AssetTag})
				return err
			})
		},
		func() error {
			return step("change-status", status, status != "" && status != res.Status, func() error {
				_, err := s.Client.ChangeStatus(ctx, api.ChangeStatus{Target: t, Status: status})
				return err
			})
		},
	} {
		if err := err(); err != nil {
			return changed, err
		}
	}
	return changed, nil
}

// send records an action and, unless in a dry run, performs it; a refusal names the action.
func (s *Syncer) send(rep *Report, action, hostname, value string, do func() error) error {
	line := strings.TrimSpace(action + " " + hostname + " " + value)
	rep.Actions = append(rep.Actions, line)
	if s.DryRun {
		return nil
	}
	if err := do(); err != nil {
		return &ActionError{Action: line, Err: err}
	}
	return nil
}

// ActionError is a command the registry refused or did not answer.
type ActionError struct {
	Action string
	Err    error
}

func (e *ActionError) Error() string { return e.Action + ": " + e.Err.Error() }
func (e *ActionError) Unwrap() error { return e.Err }

func target(r api.Resource) api.Target { return api.Target{AggregateID: r.ID} }
