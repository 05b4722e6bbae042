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

// keyTaken is the reply to a command whose events claim a key that another resource holds,
// naming the holder.
func keyTaken(err *jetstore.KeyTakenError) *api.Error {
	kind, field := api.KindHostnameTaken, "hostname"
	if err.Space == string(cr.KeySpaceAssetTag) {
		kind, field = api.KindAssetTagTaken, "asset_tag"
	}
	e := newError(api.CodeConflict, kind, field, "%s %q is held by resource %s", field, err.Key, err.Holder.ID)
	e.Details = map[string]any{"holder_id": err.Holder.ID, field: err.Key}
	return e
}

// deadlineExceeded is the reply to a command whose caller's deadline passed before its events
// could be written.
func deadlineExceeded(deadline time.Time) *api.Error {
	return newError(api.CodeUnavailable, api.KindDeadlineExceeded, "",
		"the caller's deadline %s (header %s) passed before the command could be written; nothing was written: send it again (with the same command_id) if it is still wanted",
		deadline.UTC().Format(time.RFC3339Nano), api.HeaderDeadline)
}

// newError builds an error reply; *api.Error is an error, so it travels up as one.
func newError(code int, kind, field, format string, args ...any) *api.Error {
	return &api.Error{Code: code, Kind: kind, Field: field, Message: fmt.Sprintf(format, args...)}
}

func invalidField(field, format string, args ...any) *api.Error {
	return newError(api.CodeInvalid, api.KindInvalidField, field, format, args...)
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
		return newError(api.CodeInvalid, api.KindInvalidField, "", "%v", err)
	case errors.Is(err, cr.ErrNotRegistered):
		return newError(api.CodeNotFound, api.KindNotRegistered, "", "%v", err)
	case errors.As(err, &transition):
		var allowed []string
		for _, s := range cr.Statuses() {
			if transition.From.CanTransitionTo(s) {
				allowed = append(allowed, s.String())
			}
		}
		e := newError(api.CodeConflict, api.KindInvalidTransition, "", "%v", err)
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
		e := newError(api.CodeConflict, api.KindActivationPrecondition, "", "%v", err)
		e.Details = map[string]any{"missing": missing}
		return e
	case errors.Is(err, cr.ErrAlreadyRegistered):
		return newError(api.CodeConflict, api.KindAlreadyRegistered, "", "%v", err)
	case errors.Is(err, cr.ErrDecommissioned):
		return newError(api.CodeConflict, api.KindDecommissioned, "", "%v", err)
	case errors.Is(err, cr.ErrPolicyAlreadyAdded):
		return newError(api.CodeConflict, api.KindPolicyAlreadyAdded, "", "%v", err)
	case errors.Is(err, cr.ErrPolicyNotFound):
		return newError(api.CodeConflict, api.KindPolicyNotFound, "", "%v", err)
	case errors.Is(err, cr.ErrRuleViolated):
		return newError(api.CodeConflict, api.KindRuleViolated, "", "%v", err)
	case errors.As(err, &taken):
		return keyTaken(taken)
	case errors.As(err, &conflict):
		e := newError(api.CodeConflict, api.KindConcurrency, "", "%v; send the command again", err)
		e.Details = map[string]any{"expected": conflict.Expected, "actual": conflict.Actual}
		return e
	case jetstore.IsUnavailable(err), errors.Is(err, context.DeadlineExceeded):
		return newError(api.CodeUnavailable, api.KindUnavailable, "", "%v; send the command again with the same command_id", err)
	default:
		return newError(api.CodeInternal, api.KindInternal, "", "%v", err)
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
