package projector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Delivery is one stored event as the projector's durable consumer delivered it.
type Delivery struct {
	// Sequence is the event's stream sequence: the projection's checkpoint unit.
	Sequence uint64
	// Subject is the aggregate subject the event was stored on.
	Subject string
	// Time is when the stream stored the event.
	Time time.Time
	// Header carries the event store's routing headers (type, version, ids).
	Header nats.Header
	// Data is the encoded event.
	Data []byte
	// NumDelivered counts deliveries of this message to the consumer (1 on the first).
	NumDelivered uint64

	msg jetstream.Msg
}

// Sink is a read model that applies events together with its checkpoint.
//
// The contract that makes redelivery harmless: Apply receives deliveries in stream order and
// must, atomically, skip every delivery at or below its durable checkpoint, apply the rest and
// record the last sequence as the new checkpoint. The runner acknowledges a batch only after
// Apply returned nil, so a crash at any point either loses the whole batch (it is redelivered)
// or keeps it whole (its redelivery is skipped).
type Sink interface {
	// Apply applies deliveries (in stream order) and their checkpoint atomically.
	// A *PoisonError names one delivery that can never be applied: the runner dead-letters it
	// and calls Apply again without it. Any other error is transient: the runner keeps the
	// batch, reports itself not ready and retries with backoff.
	Apply(ctx context.Context, batch []Delivery) error
	// Checkpoint returns the stream sequence of the last event the read model holds (0 for
	// none). The runner reads it when it starts (the last applied sequence is known at once) and
	// when older deliveries are outstanding (the read model may hold them already).
	Checkpoint(ctx context.Context) (uint64, error)
}

// ErrPoison is matched by every *PoisonError.
var ErrPoison = errors.New("projector: event cannot be projected")

// PoisonError says that the event at Sequence can never be applied, and why.
type PoisonError struct {
	Sequence uint64
	Reason   error
}

// Error implements error.
func (e *PoisonError) Error() string {
	return fmt.Sprintf("projector: event at stream sequence %d cannot be projected: %v", e.Sequence, e.Reason)
}

// Unwrap lets errors.Is match ErrPoison and the reason.
func (e *PoisonError) Unwrap() []error { return []error{ErrPoison, e.Reason} }

// Poison wraps reason as a *PoisonError for the delivery at seq.
func Poison(seq uint64, reason error) error { return &PoisonError{Sequence: seq, Reason: reason} }
