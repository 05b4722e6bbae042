package computeresource

import (
	"fmt"
	"strings"
)

// Status is the lifecycle status of a resource. Its zero value means "not registered";
// any other value is one of the four statuses below.
type Status struct {
	name string
}

// The four statuses. A resource is registered in provisioning.
var (
	StatusProvisioning   = Status{"provisioning"}
	StatusActive         = Status{"active"}
	StatusMaintenance    = Status{"maintenance"}
	StatusDecommissioned = Status{"decommissioned"}
)

var statuses = []Status{StatusProvisioning, StatusActive, StatusMaintenance, StatusDecommissioned}

// transitions is the status graph of the reference; decommissioned is terminal.
var transitions = map[Status][]Status{
	StatusProvisioning: {StatusActive, StatusDecommissioned},
	StatusActive:       {StatusMaintenance, StatusDecommissioned},
	StatusMaintenance:  {StatusActive, StatusDecommissioned},
}

// Statuses returns the four statuses in lifecycle order.
func Statuses() []Status { return append([]Status(nil), statuses...) }

// ParseStatus accepts a status name, case-insensitively.
func ParseStatus(s string) (Status, error) {
	key := strings.ToLower(strings.TrimSpace(s))
	for _, st := range statuses {
		if st.name == key {
			return st, nil
		}
	}
	return Status{}, fmt.Errorf("%w: %q is not a status; valid statuses: provisioning, active, maintenance, decommissioned", ErrInvalidStatus, shorten(s))
}

// CanTransitionTo reports whether the status graph has an edge from s to to. Staying in
// the same status is not a transition (Decide treats it as a change of nothing).
func (s Status) CanTransitionTo(to Status) bool {
	for _, t := range transitions[s] {
		if t == to {
			return true
		}
	}
	return false
}

// IsTerminal reports whether no transition leaves s (decommissioned).
func (s Status) IsTerminal() bool { return s == StatusDecommissioned }

// String returns the status name ("" for the zero Status).
func (s Status) String() string { return s.name }

// IsZero reports whether s is the zero Status (not registered).
func (s Status) IsZero() bool { return s.name == "" }

// MarshalText implements encoding.TextMarshaler; the zero Status is an error.
func (s Status) MarshalText() ([]byte, error) {
	if s.name == "" {
		return nil, fmt.Errorf("%w: no status", ErrInvalidStatus)
	}
	return []byte(s.name), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseStatus.
func (s *Status) UnmarshalText(b []byte) (err error) {
	*s, err = ParseStatus(string(b))
	return err
}
