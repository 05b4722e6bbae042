package commandservice

import (
	"context"
	"errors"
	"fmt"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Kinds of error replies (api.Error.Kind). They are part of the wire contract: clients switch
// on them, so they never change meaning.
const (
	KindMalformedJSON    = "malformed_json"    // 400: not one JSON object
	KindEmptyRequest     = "empty_request"     // 400: no body
	KindRequestTooLarge  = "request_too_large" // 400: body over -max-request-bytes
	KindUnknownField     = "unknown_field"     // 400: a field the request does not have (names are case-sensitive)
	KindDuplicateField   = "duplicate_field"   // 400: a field given more than once
	KindMissingField     = "missing_field"     // 400: a required field is absent or empty
	KindInvalidField     = "invalid_field"     // 400: wrong JSON type or invalid value
	KindNotRegistered    = "not_registered"    // 404: a command for a resource never registered
	KindNotFound         = "not_found"         // 404: a query for an unknown resource
	KindAlreadyExists    = "already_registered"
	KindDecommissioned   = "decommissioned"
	KindInvalidTransit   = "invalid_transition"      // 409, details from, to, allowed
	KindActivation       = "activation_precondition" // 409, details missing
	KindPolicyAdded      = "policy_already_added"
	KindPolicyNotFound   = "policy_not_found"
	KindCommandIDReused  = api.KindCommandIDReused  // 409: the command id was used for another request
	KindConcurrency      = "concurrency"            // 409: conflicts persisted after -max-retries
	KindUnavailable      = "unavailable"            // 503: the store did not answer in time
	KindShuttingDown     = "shutting_down"          // 503: the instance is stopping; the request was not processed
	KindOverloaded       = "overloaded"             // 503: -max-in-flight requests in progress; the request was not processed
	KindDeadlineExceeded = api.KindDeadlineExceeded // 503: the caller's deadline passed before the append; nothing was written
	KindInternal         = "internal"               // 500
	KindRuleViolated     = "rule_violated"          // 409: a rule without a kind of its own (none today)
	KindHostnameTaken    = api.KindHostnameTaken    // 409: another live resource has the hostname, details holder_id
	KindAssetTagTaken    = api.KindAssetTagTaken    // 409: another live resource carries the asset tag, details holder_id
)

// keyTaken is the reply to a command whose events claim a key that another resource holds,
// naming the holder.
func keyTaken(err *jetstore.KeyTakenError) *api.Error {
	kind, field := KindHostnameTaken, "hostname"
	if err.Space == string(cr.KeySpaceAssetTag) {
		kind, field = KindAssetTagTaken, "asset_tag"
	}
	e := newError(api.CodeConflict, kind, field, "%s %q is held by resource %s", field, err.Key, err.Holder.ID)
	e.Details = map[string]any{"holder_id": err.Holder.ID, field: err.Key}
	return e
}

// deadlineExceeded is the reply to a command whose caller's deadline passed before its events
// could be written.
func deadlineExceeded(deadline time.Time) *api.Error {
	return newError(api.CodeUnavailable, KindDeadlineExceeded, "",
		"the caller's deadline %s (header %s) passed before the command could be written; nothing was written: send it again (with the same command_id) if it is still wanted",
		deadline.UTC().Format(time.RFC3339Nano), api.HeaderDeadline)
}

// newError builds an error reply; *api.Error is an error, so it travels up as one.
func newError(code int, kind, field, format string, args ...any) *api.Error {
	return &api.Error{Code: code, Kind: kind, Field: field, Message: fmt.Sprintf(format, args...)}
}

func invalidField(field, format string, args ...any) *api.Error {
	return newError(api.CodeInvalid, KindInvalidField, field, format, args...)
}

// domainFields maps the domain's field names (cr.FieldError.Field) to the request's.
var domainFields = map[string]string{
	"id":             "aggregate_id",
	"metadata_key":   "key",
	"metadata_value": "value",
	"to_status":      "status",
}

// toReply classifies any error of request processing as its wire reply.
func toReply(err error) *api.Error {
	var reply *api.Error
	if errors.As(err, &reply) {
		return reply
	}
	var fieldErr *cr.FieldError
	var transition *cr.TransitionError
	var activation *cr.ActivationError
	var conflict *jetstore.ConcurrencyError
	var taken *jetstore.KeyTakenError
	switch {
	case errors.As(err, &fieldErr):
		field := fieldErr.Field
		if f, ok := domainFields[field]; ok {
			field = f
		}
		return invalidField(field, "%s: %s", field, fieldErr.Reason)
	case errors.Is(err, cr.ErrInvalidInput):
		return newError(api.CodeInvalid, KindInvalidField, "", "%v", err)
	case errors.Is(err, cr.ErrNotRegistered):
		return newError(api.CodeNotFound, KindNotRegistered, "", "%v", err)
	case errors.As(err, &transition):
		var allowed []string
		for _, s := range cr.Statuses() {
			if transition.From.CanTransitionTo(s) {
				allowed = append(allowed, s.String())
			}
		}
		e := newError(api.CodeConflict, KindInvalidTransit, "", "%v", err)
		e.Details = map[string]any{"from": transition.From.String(), "to": transition.To.String(), "allowed": allowed}
		return e
	case errors.As(err, &activation):
		var missing []string
		if activation.MissingOrganization {
			missing = append(missing, "organization")
		}
		if activation.MissingLocation {
			missing = append(missing, "location")
		}
		e := newError(api.CodeConflict, KindActivation, "", "%v", err)
		e.Details = map[string]any{"missing": missing}
		return e
	case errors.Is(err, cr.ErrAlreadyRegistered):
		return newError(api.CodeConflict, KindAlreadyExists, "", "%v", err)
	case errors.Is(err, cr.ErrDecommissioned):
		return newError(api.CodeConflict, KindDecommissioned, "", "%v", err)
	case errors.Is(err, cr.ErrPolicyAlreadyAdded):
		return newError(api.CodeConflict, KindPolicyAdded, "", "%v", err)
	case errors.Is(err, cr.ErrPolicyNotFound):
		return newError(api.CodeConflict, KindPolicyNotFound, "", "%v", err)
	case errors.Is(err, cr.ErrRuleViolated):
		return newError(api.CodeConflict, KindRuleViolated, "", "%v", err)
	case errors.As(err, &taken):
		return keyTaken(taken)
	case errors.As(err, &conflict):
		e := newError(api.CodeConflict, KindConcurrency, "", "%v; send the command again", err)
		e.Details = map[string]any{"expected": conflict.Expected, "actual": conflict.Actual}
		return e
	case jetstore.IsUnavailable(err), errors.Is(err, context.DeadlineExceeded):
		return newError(api.CodeUnavailable, KindUnavailable, "", "%v; send the command again with the same command_id", err)
	default:
		return newError(api.CodeInternal, KindInternal, "", "%v", err)
	}
}

// unavailable marks err as jetstore.ErrUnavailable (a 503) when it says that NATS or the
// server did not answer in time, for errors of calls that do not go through jetstore.
func unavailable(err error) error {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders), errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrConnectionDraining), errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrDisconnected), errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, jetstream.ErrJetStreamNotEnabled),
		errors.As(err, &apiErr) && apiErr.Code == 503:
		return fmt.Errorf("%w: %w", jetstore.ErrUnavailable, err)
	}
	return err
}
