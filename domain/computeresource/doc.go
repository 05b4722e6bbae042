// Package computeresource is the pure domain of a compute resource in the infrastructure
// registry: its state, the 12 commands that may change it, the 12 events that record what
// changed, the rules between them, and the versioned encoding of the events.
//
// It imports nothing but the standard library, github.com/google/uuid and the JSON library
// github.com/go-json-experiment/json (the encoding/json/v2 design, which reads the events), and
// does no I/O: no clock, no random source, no logger. Ids and time come in with each command.
//
//   - Decide(state, command) returns the events a command produces, or why it is refused.
//   - Apply(state, event) returns the next state; it never fails. Fold(State{}, history...)
//     is the state of a resource. States are values and safe to share.
//   - EncodeEvent / DecodeEvent convert events to and from versioned JSON payloads;
//     DecodeEvent reads the current version; Upcasters lists the upcasters, which the event
//     store applies to older versions before DecodeEvent.
//
// # Rules
//
// A resource is registered once, in status provisioning; every other command needs a
// registered resource. Status moves along provisioning -> active | decommissioned,
// active -> maintenance | decommissioned, maintenance -> active | decommissioned.
// Provisioning -> active needs an assigned organization and location. Decommissioned is
// terminal: every later command on the resource is refused with ErrDecommissioned. Adding
// a policy already present or removing one absent is refused. A command that would change
// nothing (the same organization, status, metadata value, hardware details, asset tag,
// clearing an absent account concept...) succeeds with no events.
//
// # Errors
//
// Callers classify errors with errors.Is; every error of Decide matches one class:
//
//   - ErrInvalidInput: the command's own values are wrong, whatever the state: a nil
//     command id, aggregate id or referenced id, a zero timestamp, a missing hostname or
//     type or status, text out of bounds (*FieldError says the field, the value and the
//     bound). ErrInvalidHostname, ErrInvalidResourceType, ErrInvalidCategory,
//     ErrInvalidStatus, ErrInvalidID and ErrWrongAggregate are in this class. Retrying
//     the command unchanged cannot succeed.
//   - ErrRuleViolated: a well-formed command refused by the state: ErrNotRegistered,
//     ErrAlreadyRegistered, ErrDecommissioned, ErrPolicyAlreadyAdded, ErrPolicyNotFound,
//     ErrInvalidTransition (*TransitionError) and ErrActivationPrecondition
//     (*ActivationError).
//
// The codec's errors, ErrUnknownEventType, ErrUnknownEventVersion and ErrMalformedEvent,
// are in neither class: they concern stored data.
//
// # Events and idempotency
//
// An event's id is a name-based UUID derived from the command id, the aggregate id and
// the event's index in the decision; its timestamp is the command's; its correlation id
// is the command's (or the command id when none); its causation id is the command's
// causation id (or the command id when none). So a command retried against the same state
// yields byte-identical encoded events, which the event store can de-duplicate.
//
// # Encoding
//
// Payloads are snake_case JSON holding the envelope (event_id, aggregate_id, command_id,
// correlation_id, causation_id, timestamp in RFC 3339 UTC) and the event's fields; ids
// that are nil are omitted. The schema version travels beside the payload, not in it.
// ResourceRegistered is at version 2: version 1 was upstream's payload with a free-form
// resource_type string; its upcaster maps aliases to canonical names and anything
// unrecognisable to "unknown", as upstream itself recorded it. Every other event is at
// version 1.
package computeresource
