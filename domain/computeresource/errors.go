package computeresource

import (
	"errors"
	"fmt"
	"strings"
)

// The two classes of domain error. Every error returned by Decide or by a Parse function
// matches exactly one of them with errors.Is.
var (
	// ErrInvalidInput is the class of errors about the command's own values, whatever the
	// state of the resource: a zero id or timestamp, a malformed hostname, a metadata key
	// outside its bounds. Retrying the same command can never succeed.
	ErrInvalidInput = errors.New("invalid input")

	// ErrRuleViolated is the class of errors where a well-formed command is refused by a
	// rule of the aggregate given its current state: not registered, already registered,
	// decommissioned, a forbidden status transition... The same command may succeed
	// against another state.
	ErrRuleViolated = errors.New("rule violated")
)

// Invalid input errors (each matches ErrInvalidInput).
var (
	// ErrInvalidHostname: the value is not an RFC 1123 hostname; see *HostnameError.
	ErrInvalidHostname = fmt.Errorf("%w: hostname", ErrInvalidInput)
	// ErrInvalidResourceType: the value names none of the 33 resource types or their aliases.
	ErrInvalidResourceType = fmt.Errorf("%w: resource type", ErrInvalidInput)
	// ErrInvalidCategory: the value names none of the 9 categories.
	ErrInvalidCategory = fmt.Errorf("%w: category", ErrInvalidInput)
	// ErrInvalidStatus: the value names none of the four statuses.
	ErrInvalidStatus = fmt.Errorf("%w: status", ErrInvalidInput)
	// ErrInvalidID: the value is not a UUID, or is the nil UUID.
	ErrInvalidID = fmt.Errorf("%w: id", ErrInvalidInput)
	// ErrWrongAggregate: the command is addressed to another resource than the state given.
	ErrWrongAggregate = fmt.Errorf("%w: command addressed to another resource", ErrInvalidInput)
)

// Rule violations (each matches ErrRuleViolated).
var (
	// ErrNotRegistered: the command needs a registered resource.
	ErrNotRegistered = fmt.Errorf("%w: resource not registered", ErrRuleViolated)
	// ErrAlreadyRegistered: a resource is registered once.
	ErrAlreadyRegistered = fmt.Errorf("%w: resource already registered", ErrRuleViolated)
	// ErrDecommissioned: decommissioned is terminal; every later command is refused.
	ErrDecommissioned = fmt.Errorf("%w: resource is decommissioned", ErrRuleViolated)
	// ErrPolicyAlreadyAdded: AddPolicy of a policy the resource already has.
	ErrPolicyAlreadyAdded = fmt.Errorf("%w: policy already added", ErrRuleViolated)
	// ErrPolicyNotFound: RemovePolicy of a policy the resource does not have.
	ErrPolicyNotFound = fmt.Errorf("%w: policy not found", ErrRuleViolated)
	// ErrInvalidTransition: the status graph forbids the change; see *TransitionError.
	ErrInvalidTransition = fmt.Errorf("%w: invalid status transition", ErrRuleViolated)
	// ErrActivationPrecondition: provisioning -> active needs an organization and a
	// location; see *ActivationError.
	ErrActivationPrecondition = fmt.Errorf("%w: activation precondition not met", ErrRuleViolated)
)

// Codec errors. They belong to neither class: they concern stored data, not commands.
var (
	// ErrUnknownEventType: the codec knows no event of that name.
	ErrUnknownEventType = errors.New("unknown event type")
	// ErrUnknownEventVersion: the event type is known but not at that schema version.
	ErrUnknownEventVersion = errors.New("unknown event version")
	// ErrMalformedEvent: the payload is not valid JSON of the expected shape, or misses a
	// required field, or holds an invalid value.
	ErrMalformedEvent = errors.New("malformed event")
)

// FieldError reports a command field whose value is out of bounds or missing.
type FieldError struct {
	Field  string // the command field, snake_case ("metadata_key")
	Value  string // the offending value, possibly shortened; empty when missing
	Reason string // what is required ("1-128 characters from [A-Za-z0-9._/-]")
}

func (e *FieldError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("invalid input: %s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("invalid input: %s %q: %s", e.Field, shorten(e.Value), e.Reason)
}

// Is makes a *FieldError match ErrInvalidInput.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidInput }

// TransitionError reports a status change the status graph forbids.
type TransitionError struct {
	From, To Status
}

func (e *TransitionError) Error() string {
	allowed := make([]string, 0, 2)
	for _, s := range Statuses() {
		if e.From.CanTransitionTo(s) {
			allowed = append(allowed, s.String())
		}
	}
	if len(allowed) == 0 {
		return fmt.Sprintf("%v: %s -> %s (%s is terminal)", ErrInvalidTransition, e.From, e.To, e.From)
	}
	return fmt.Sprintf("%v: %s -> %s (from %s only %s)", ErrInvalidTransition, e.From, e.To, e.From,
		strings.Join(allowed, " or "))
}

// Is makes a *TransitionError match ErrInvalidTransition (and so ErrRuleViolated).
func (e *TransitionError) Is(target error) bool {
	return target == ErrInvalidTransition || target == ErrRuleViolated
}

// ActivationError reports what a provisioning resource lacks to become active.
type ActivationError struct {
	MissingOrganization bool
	MissingLocation     bool
}

func (e *ActivationError) Error() string {
	var missing []string
	if e.MissingOrganization {
		missing = append(missing, "organization")
	}
	if e.MissingLocation {
		missing = append(missing, "location")
	}
	return fmt.Sprintf("%v: provisioning -> active needs an assigned %s", ErrActivationPrecondition,
		strings.Join(missing, " and "))
}

// Is makes an *ActivationError match ErrActivationPrecondition (and so ErrRuleViolated).
func (e *ActivationError) Is(target error) bool {
	return target == ErrActivationPrecondition || target == ErrRuleViolated
}

// shorten keeps error messages readable when a value is huge (a 4 KiB metadata value).
func shorten(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d bytes)", s[:cut], len(s))
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
