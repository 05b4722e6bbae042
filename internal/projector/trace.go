package projector

import (
	"context"
	"time"

	"github.com/cim-infra/registry/internal/tracing"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Attributes of a batch's span, beside the messaging ones.
const (
	attrProjector  = "cim.projector"
	attrSequence   = "cim.sequence"
	attrCheckpoint = "cim.checkpoint"
	// attrDeadLetters counts the batch's events moved to the dead-letter stream.
	attrDeadLetters = "cim.dead_letters"
	attrLagEvents   = "cim.lag.events"
	attrLagSeconds  = "cim.lag.seconds"
)

// startBatch starts the consumer span of a batch: "process <destination template>", parented
// by the trace context stored on the first event and linked to the other events' (see
// tracing.StartProcess). A no-op while tracing is off.
func (r *Runner) startBatch(ctx context.Context, batch []Delivery) (context.Context, trace.Span) {
	ctx, span := tracing.StartProcess(ctx, batch[0].Subject, batch[0].Header)
	if !span.IsRecording() {
		return ctx, span
	}
	for _, d := range batch[1:] {
		tracing.Link(span, d.Header)
	}
	span.SetAttributes(attribute.String(attrProjector, r.cfg.Name),
		attribute.String("messaging.consumer.group.name", r.cfg.Durable),
		attribute.String("cim.stream", r.cfg.Stream),
		attribute.Int("messaging.batch.message_count", len(batch)),
		attribute.Int64("cim.first_sequence", int64(batch[0].Sequence)))
	return ctx, span
}

// traceApplied records what an applied batch left: the checkpoint (its last sequence), how many
// events it applied (dead letters left out) and the lag behind the stream after it.
func (r *Runner) traceApplied(span trace.Span, batch []Delivery) {
	last := batch[len(batch)-1]
	span.SetAttributes(attribute.Int64(attrCheckpoint, int64(last.Sequence)),
		attribute.Int("cim.applied", len(batch)),
		attribute.Int64(attrLagEvents, int64(r.pendingAfter(last))),
		attribute.Float64(attrLagSeconds, time.Since(last.Time).Seconds()))
}
