package projector

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetter stores a copy of d in the dead-letter stream, on subject, with the reason and the
// Cim-Dlq-* headers, exactly as a Runner does, for readers of the stream that are not Runners
// (the query service's model). Its message id "<projector>-<stream sequence>" de-duplicates
// copies of the same event within the stream's duplicate window.
func DeadLetter(ctx context.Context, js jetstream.JetStream, subject, projector string, d Delivery, reason error) error {
	return deadLetter(ctx, js, subject, projector, d, reason)
}
