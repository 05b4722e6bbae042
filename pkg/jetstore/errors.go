package jetstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

var (
	// ErrConcurrency reports that the aggregate has moved past the expected sequence: another
	// writer appended first. The error is a *ConcurrencyError; reload and decide again.
	ErrConcurrency = errors.New("jetstore: concurrency conflict")

	// ErrEventIDReused reports that an event id of an Append is already stored, but not as this
	// same write: on another aggregate, or as part of another write. The error is an
	// *EventIDReusedError; nothing was written. Retrying cannot succeed: give the events new
	// ids.
	ErrEventIDReused = errors.New("jetstore: event id reused")

	// ErrNoEvents is returned by Append when it is given no events.
	ErrNoEvents = errors.New("jetstore: no events to append")

	// ErrTooManyEvents is returned by Append, before anything is written, when more events are
	// given than one atomic batch may hold (Config.MaxEventsPerAppend, at most 1000).
	ErrTooManyEvents = errors.New("jetstore: too many events for one atomic append")

	// ErrInvalidAggregate reports an aggregate type or id that cannot be a subject token.
	ErrInvalidAggregate = errors.New("jetstore: invalid aggregate")

	// ErrInvalidEvent reports an event that cannot be stored (missing id or type, bad header...).
	ErrInvalidEvent = errors.New("jetstore: invalid event")

	// ErrInvalidConfig reports a Config that cannot be used.
	ErrInvalidConfig = errors.New("jetstore: invalid config")

	// ErrInvalidOption reports an option with an invalid value.
	ErrInvalidOption = errors.New("jetstore: invalid option")

	// ErrIncompatibleStream reports an existing stream whose settings would make the store
	// unsafe or unusable. The error is an *IncompatibleStreamError listing every problem.
	ErrIncompatibleStream = errors.New("jetstore: incompatible stream")

	// ErrUpcast reports that an upcaster failed; the error is an *UpcastError.
	ErrUpcast = errors.New("jetstore: upcast failed")

	// ErrCorruptEvent reports a stored message that lacks the headers this package writes.
	ErrCorruptEvent = errors.New("jetstore: corrupt event")

	// ErrUnavailable reports that the store could not be reached or did not answer in time
	// (timeouts, no responders, closed or reconnecting connection, JetStream unavailable).
	// Callers usually map it to "503 Service Unavailable" and retry later. The original error
	// stays in the chain (errors.Is(err, context.DeadlineExceeded) still works).
	// An Append that fails with ErrUnavailable may or may not have been written: retrying it
	// with the same events and the same expected sequence is safe (see Append).
	ErrUnavailable = errors.New("jetstore: store unavailable")
)

// ConcurrencyError is returned by Append when the aggregate's last sequence is not the expected
// one. errors.Is(err, ErrConcurrency) is true.
type ConcurrencyError struct {
	// Aggregate is the aggregate that was appended to.
	Aggregate AggregateRef
	// Expected is the last sequence the caller expected.
	Expected uint64
	// Actual is the aggregate's last sequence as read after the conflict, 0 when unknown.
	Actual uint64
	// Err is the server's error.
	Err error
}

// Error implements error.
func (e *ConcurrencyError) Error() string {
	if e.Actual == 0 {
		return fmt.Sprintf("jetstore: concurrency conflict on %s: expected last sequence %d, actual unknown", e.Aggregate, e.Expected)
	}
	return fmt.Sprintf("jetstore: concurrency conflict on %s: expected last sequence %d, actual %d", e.Aggregate, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrConcurrency) true.
func (e *ConcurrencyError) Is(target error) bool { return target == ErrConcurrency }

// Unwrap returns the server's error.
func (e *ConcurrencyError) Unwrap() error { return e.Err }

// IncompatibleStreamError lists why an existing stream cannot be used.
// errors.Is(err, ErrIncompatibleStream) is true.
type IncompatibleStreamError struct {
	// Stream is the stream's name.
	Stream string
	// Problems names each offending setting with its value, e.g. "storage is memory, want file".
	Problems []string
}

// Error implements error.
func (e *IncompatibleStreamError) Error() string {
	return fmt.Sprintf("jetstore: stream %q is incompatible: %s", e.Stream, strings.Join(e.Problems, "; "))
}

// Is makes errors.Is(err, ErrIncompatibleStream) true.
func (e *IncompatibleStreamError) Is(target error) bool { return target == ErrIncompatibleStream }

// UpcastError reports a failing upcaster. errors.Is(err, ErrUpcast) is true.
type UpcastError struct {
	// EventType and Version name the upcaster that failed (its EventType and FromVersion).
	EventType string
	Version   int
	// Sequence is the stream sequence of the event being upcast (0 when the caller of
	// Upcasters.Upcast did not set it).
	Sequence uint64
	// Err is the upcaster's error.
	Err error
}

// Error implements error.
func (e *UpcastError) Error() string {
	if e.Sequence == 0 { // an event upcast outside a Store, whose sequence the caller did not give
		return fmt.Sprintf("jetstore: upcast of %s v%d: %v", e.EventType, e.Version, e.Err)
	}
	return fmt.Sprintf("jetstore: upcast of %s v%d at sequence %d: %v", e.EventType, e.Version, e.Sequence, e.Err)
}

// Is makes errors.Is(err, ErrUpcast) true.
func (e *UpcastError) Is(target error) bool { return target == ErrUpcast }

// Unwrap returns the upcaster's error.
func (e *UpcastError) Unwrap() error { return e.Err }

// IsUnavailable reports whether err means the store could not be reached or did not answer in
// time. It is errors.Is(err, ErrUnavailable).
func IsUnavailable(err error) bool { return errors.Is(err, ErrUnavailable) }

// unavailableError marks a transport error as ErrUnavailable and keeps it in the chain.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string        { return "jetstore: store unavailable: " + e.err.Error() }
func (e *unavailableError) Is(target error) bool { return target == ErrUnavailable }
func (e *unavailableError) Unwrap() error        { return e.err }

// classify wraps err with ErrUnavailable when it says the store could not be reached or did not
// answer in time. A cancelled context is the caller's decision, not an outage: it is returned as
// is.
func classify(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) {
		return err
	}
	if isTransport(err) {
		return &unavailableError{err: err}
	}
	return err
}

func isTransport(err error) bool {
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrConnectionDraining),
		errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrReconnectBufExceeded),
		errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, jetstream.ErrJetStreamNotEnabled):
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.Code == 503 || apiErr.ErrorCode == jetstreamext.JSErrCodeBatchPublishIncomplete) {
		// An atomic batch cut short (10176: its leader changed while it was being sent, say) is
		// discarded whole: the store did not take it, and sending it again is safe.
		return true
	}
	return false
}

// ctxErr returns the context's error, classified, if the context is done.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return classify(err)
	}
	return nil
}

// EventIDReusedError is returned by Append when an event id is already stored, within the
// stream's duplicates window, but not as the same write (the same ids, in the same order, as
// one write of the same aggregate). errors.Is(err, ErrEventIDReused) is true.
type EventIDReusedError struct {
	// Aggregate is the aggregate that was appended to.
	Aggregate AggregateRef
	// EventID is the id found stored, Sequence where and StoredOn on which aggregate; all zero
	// when the server refused a batch for an id stored elsewhere without saying which.
	EventID  string
	Sequence uint64
	StoredOn AggregateRef
	// Err is the server's error, if it refused the append.
	Err error
}

// Error implements error.
func (e *EventIDReusedError) Error() string {
	if e.EventID == "" {
		return fmt.Sprintf("jetstore: append to %s: an event id is already stored by another write", e.Aggregate)
	}
	return fmt.Sprintf("jetstore: append to %s: event id %q is already stored at sequence %d (%s) by another write", e.Aggregate, e.EventID, e.Sequence, e.StoredOn)
}

// Is makes errors.Is(err, ErrEventIDReused) true.
func (e *EventIDReusedError) Is(target error) bool { return target == ErrEventIDReused }

// Unwrap returns the server's error.
func (e *EventIDReusedError) Unwrap() error { return e.Err }
