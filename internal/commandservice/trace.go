package commandservice

import (
	"context"
	"errors"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/internal/tracing"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Span names and attributes of the command service's spans (see package tracing for the
// messaging ones).
const (
	spanLoad   = "load"
	spanDecide = "decide"

	attrCommand     = "cim.command"
	attrCommandID   = "cim.command_id"
	attrAggregateID = "cim.aggregate_id"
	attrDuplicate   = "cim.duplicate"
	attrVersion     = "cim.version"
	attrEvents      = "cim.events"
	attrErrorKind   = "cim.error.kind"
	attrErrorCode   = "cim.error.code"
	attrCache       = "cim.cache"
	attrLoad        = "cim.load"
	attrSnapshotSeq = "cim.snapshot_sequence"
	attrExpected    = "cim.expected_sequence"
	attrAttempt     = "cim.attempt"
)

// traceCommand records a command's outcome on its server span: a re-sent command answered from
// its earlier outcome has cim.duplicate true; a refused or failed one has its error code and
// kind, and the span's status is an error for failures (codes 5xx), not for refusals.
func traceCommand(span trace.Span, name string, cmd cr.Command, out api.CommandReply, err error) {
	span.SetAttributes(attribute.String(attrCommand, name))
	if cmd != nil {
		span.SetAttributes(attribute.String(attrCommandID, cmd.Metadata().CommandID.String()),
			attribute.String(attrAggregateID, cmd.AggregateID().String()))
	}
	if err != nil {
		e := toReply(err)
		span.SetAttributes(attribute.Int(attrErrorCode, e.Code), attribute.String(attrErrorKind, e.Kind))
		if e.Code >= 500 {
			span.SetStatus(codes.Error, e.Message)
		}
		return
	}
	span.SetAttributes(attribute.Bool(attrDuplicate, out.Duplicate), attribute.Int64(attrVersion, int64(out.Version)),
		attribute.Int(attrEvents, len(out.Events)))
}

// startLoad starts the span of a read of an aggregate's state; how says which read
// ("cache_hit", "cache_miss", "refresh").
func startLoad(ctx context.Context, how string) (context.Context, trace.Span) {
	ctx, span := tracing.Start(ctx, spanLoad)
	if span.IsRecording() {
		span.SetAttributes(attribute.String(attrLoad, how))
	}
	return ctx, span
}

// endLoad ends a load span with the state it gave.
func endLoad(span trace.Span, e *entry, err error) {
	if span.IsRecording() {
		tracing.Fail(span, err)
		span.SetAttributes(attribute.Int64(attrVersion, int64(e.agg.lastSeq)), attribute.Int64(attrSnapshotSeq, int64(e.agg.snapSeq)))
	}
	span.End()
}

// startAppend starts the producer span of an append to the aggregate's subject.
func (s *Service) startAppend(ctx context.Context, e *entry, expected uint64, attempt int) (context.Context, trace.Span) {
	if !tracing.Enabled() {
		return ctx, trace.SpanFromContext(context.Background())
	}
	subject, err := s.store.Subject(resourcestore.Ref(e.id))
	if err != nil {
		subject = s.store.Config().SubjectPrefix + "." + resourcestore.AggregateType + ".{id}"
	}
	ctx, span := tracing.StartPublish(ctx, subject)
	span.SetAttributes(attribute.String(attrAggregateID, e.id.String()), attribute.Int64(attrExpected, int64(expected)),
		attribute.Int(attrAttempt, attempt))
	return ctx, span
}

// traceAppend records an append's outcome on its span: the sequences written, a duplicate (the
// write was already stored by an earlier attempt), or a "conflict" event when the aggregate had
// moved on (the command is then decided again on the new state, up to -max-retries times).
func traceAppend(span trace.Span, res jetstore.AppendResult, err error) {
	switch {
	case err == nil:
		span.SetAttributes(attribute.Int64("cim.first_sequence", int64(res.FirstSequence)),
			attribute.Int64("cim.last_sequence", int64(res.LastSequence)), attribute.Bool(attrDuplicate, res.Duplicate))
	case errors.Is(err, jetstore.ErrConcurrency):
		span.AddEvent("conflict", trace.WithAttributes(attribute.String("cim.error", err.Error())))
		span.SetStatus(codes.Error, "concurrency conflict")
	default:
		tracing.Fail(span, err)
	}
}
