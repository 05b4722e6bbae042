package queryservice

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cim-infra/registry/internal/projector"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/internal/retry"
	"github.com/cim-infra/registry/internal/tracing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	oteltrace "go.opentelemetry.io/otel/trace"
)

// aggregateType is the only aggregate type the model knows; events of others are skipped.
const aggregateType = resourcestore.AggregateType

// ErrNotCaughtUp is the readiness error of a model that has not yet applied the stream's head
// as it stood at start-up.
var ErrNotCaughtUp = errors.New("model not caught up with the stream")

// ErrLagging is the readiness error of a model further behind the stream than allowed.
var ErrLagging = errors.New("model lagging behind the stream")

// follower keeps the model equal to the fold of the stream: it reads every event from the
// model's sequence on with an ordered consumer (not durable, in memory, one replica, recreated
// by nats.go from the last sequence after a gap), applies each through the domain's Apply in
// batches that readers see whole, and goes on with the live tail.
type follower struct {
	js      jetstream.JetStream
	model   *Model
	opts    Options
	log     zerolog.Logger
	metrics *metrics

	target     atomic.Uint64 // the stream's last sequence at start: ready once applied
	ready      atomic.Bool   // set once, when the model reached target
	readyCh    chan struct{}
	pending    atomic.Uint64 // events after the last applied one, as the server last said
	lastDLQSeq uint64        // highest stream sequence already in the dead-letter subject
	reads      int           // reads of the stream started: each names its consumers apart

	snaps    *snapshots     // nil with NoSnapshots
	stream   streamIdentity // the stream the model is built from
	restored uint64         // the sequence of the snapshot the model started from (0: none)
}

func newFollower(js jetstream.JetStream, model *Model, opts Options, log zerolog.Logger, m *metrics) *follower {
	return &follower{js: js, model: model, opts: opts, log: log, metrics: m, readyCh: make(chan struct{})}
}

// Ready is the readiness check: the model has caught up with the start-up head and is at most
// -ready-max-lag events behind the stream.
func (f *follower) Ready(context.Context) error {
	applied, pending, target := f.model.Written(), f.pending.Load(), f.target.Load()
	if !f.ready.Load() {
		return fmt.Errorf("%w: applied %d of %d (lag %d events)", ErrNotCaughtUp, applied, target, target-min(applied, target))
	}
	if f.opts.ReadyMaxLag > 0 && pending > uint64(f.opts.ReadyMaxLag) {
		return fmt.Errorf("%w: lag %d events, over -ready-max-lag %d (applied %d)", ErrLagging, pending, f.opts.ReadyMaxLag, applied)
	}
	return nil
}

// saveSnapshot writes the model's snapshot when the model is newer than the stored one.
func (f *follower) saveSnapshot(ctx context.Context) error {
	if f.snaps == nil {
		return nil
	}
	v := f.model.View()
	stored, err := f.snaps.storedSequence(ctx, f.stream)
	if err != nil || stored >= v.Sequence() {
		return err
	}
	start := time.Now()
	size, err := f.snaps.save(ctx, v, f.stream)
	if err != nil {
		return err
	}
	f.log.Info().Uint64("seq", v.Sequence()).Int("bytes", size).Dur("took", time.Since(start)).Msg("snapshot written")
	return nil
}

// snapshotLoop writes the snapshot every SnapshotInterval until ctx is done.
func (f *follower) snapshotLoop(ctx context.Context) {
	if f.snaps == nil {
		return
	}
	t := time.NewTicker(f.opts.SnapshotInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := f.saveSnapshot(ctx); err != nil && ctx.Err() == nil {
				f.log.Warn().Err(err).Msg("snapshot not written")
			}
		}
	}
}

// caughtUp is closed once the model has applied the stream's head as it stood at start-up.
func (f *follower) caughtUp() <-chan struct{} { return f.readyCh }

func (f *follower) markReady() {
	if f.ready.CompareAndSwap(false, true) {
		close(f.readyCh)
		f.log.Info().Uint64("seq", f.model.Sequence()).Int("resources", f.model.Resources()).Msg("model caught up with the stream")
	}
}

// start reads the stream's head and the dead-letter position; run follows the stream.
func (f *follower) start(ctx context.Context) error {
	if err := projector.EnsureDeadLetterStream(ctx, f.js, f.opts.DeadLetter); err != nil {
		return err
	}
	stream, err := f.js.Stream(ctx, f.opts.Stream)
	if err != nil {
		return fmt.Errorf("queryservice: stream %s: %w", f.opts.Stream, err)
	}
	info := stream.CachedInfo()
	target := info.State.LastSeq
	f.target.Store(target)
	f.stream = streamIdentity{name: info.Config.Name, created: info.Created}
	if !f.opts.NoSnapshots {
		if f.snaps, err = openSnapshots(ctx, f.js, f.opts.SnapshotBucket, f.opts.SnapshotReplicas); err != nil {
			return err
		}
		seq, err := f.snaps.load(ctx, f.model, f.stream, target)
		switch {
		case err != nil:
			f.log.Warn().Err(err).Msg("snapshot not used; building the model from the first event")
		case seq > 0:
			f.restored = seq
			f.metrics.applied.Set(float64(seq))
			f.log.Info().Uint64("seq", seq).Int("resources", f.model.Resources()).Msg("model loaded from the snapshot")
		}
	}
	f.metrics.head.Set(float64(target))
	if f.lastDLQSeq, err = f.lastDeadLetter(ctx); err != nil {
		return err
	}
	if f.model.Sequence() >= target {
		f.markReady()
	} else if f.model.Sequence() == 0 {
		f.model.StartBulk()
	}
	f.log.Info().Uint64("head", target).Uint64("from", f.model.Sequence()+1).Msg("building the model from the stream")
	return nil
}

// run follows the stream until ctx is done; a failed read starts again from the model's
// sequence after a pause.
func (f *follower) run(ctx context.Context) error {
	// Following has no end but ctx's, so not retry.Do: every return of follow is retried.
	backoff := retry.Backoff{Next: 100 * time.Millisecond, Max: 10 * time.Second}
	for {
		err := f.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		f.log.Warn().Err(err).Uint64("seq", f.model.Written()).Dur("retry_in", backoff.Next).Msg("reading the stream failed; reading again from the model's sequence")
		if !backoff.Wait(ctx) {
			return nil
		}
	}
}

func (f *follower) follow(ctx context.Context) error {
	from := f.model.Written() + 1
	// A read that failed leaves its consumer on the server until -consumer-inactive. Its name
	// is not reused: the server would refuse a consumer of that name from another sequence.
	f.reads++
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{f.opts.SubjectPrefix + ".>"},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       from,
		NamePrefix:        f.opts.ConsumerPrefix + "-" + strconv.Itoa(f.reads),
		InactiveThreshold: f.opts.ConsumerInactive,
		// nats.go makes a lost consumer again (a leader change, a restart), by default for ever
		// and without regard to ctx; after a few tries, run reads again from the model's
		// sequence instead, with a warning, waiting as ctx allows.
		MaxResetAttempts: 3,
	}
	cons, err := f.js.OrderedConsumer(ctx, f.opts.Stream, cfg)
	if err != nil {
		return fmt.Errorf("queryservice: ordered consumer from %d: %w", from, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("queryservice: read from %d: %w", from, err)
	}
	defer it.Stop()
	// Next waits for ctx, but not while it makes the consumer again: stopping the iterator
	// ends that too.
	defer context.AfterFunc(ctx, it.Stop)()
	var batch *Batch
	inBatch := 0
	// Each batch has a consumer span, parented by the trace context stored on its first event
	// and linked to the others'.
	bctx, span := ctx, oteltrace.SpanFromContext(context.Background())
	defer func() {
		if batch != nil {
			batch.Abort()
			span.End()
		}
	}()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return fmt.Errorf("queryservice: read after %d: %w", f.model.Written(), err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("queryservice: message after %d: %w", f.model.Written(), err)
		}
		if batch == nil {
			batch = f.model.Begin()
		}
		if md.Sequence.Stream <= batch.seq {
			continue // already applied (a re-delivery after the consumer was recreated)
		}
		if inBatch == 0 {
			bctx, span = f.startBatch(ctx, msg.Subject(), msg.Headers())
		} else {
			tracing.Link(span, msg.Headers())
		}
		if err := f.apply(bctx, batch, md.Sequence.Stream, msg); err != nil {
			tracing.Fail(span, err)
			return err
		}
		inBatch++
		// Commit when the stream has nothing more right now, so that no batch is held open
		// while waiting, or when the batch is full, so that readers see progress.
		if md.NumPending == 0 || inBatch >= f.opts.BatchSize {
			if err := batch.Commit(); err != nil {
				tracing.Fail(span, err)
				return err
			}
			if span.IsRecording() {
				f.traceCommitted(span, inBatch, md)
			}
			span.End()
			batch, inBatch = nil, 0
			f.committed(md.Sequence.Stream, md.NumPending)
		}
	}
}

// committed records the position after a commit.
func (f *follower) committed(seq, pending uint64) {
	f.pending.Store(pending)
	f.metrics.applied.Set(float64(seq))
	f.metrics.lag.Set(float64(pending))
	f.metrics.head.Set(float64(seq + pending))
	f.metrics.resources.Set(float64(f.model.Resources()))
	if seq >= f.target.Load() || pending == 0 {
		f.model.EndBulk() // before readiness: the service serves once ready
		f.markReady()
	}
}

// apply applies one message to the batch: an event of another aggregate type is skipped, one
// that cannot be decoded is dead-lettered and skipped.
func (f *follower) apply(ctx context.Context, b *Batch, seq uint64, msg jetstream.Msg) error {
	subject := msg.Subject()
	if typ := aggregateTypeOf(subject, f.opts.SubjectPrefix); typ != aggregateType {
		f.metrics.skipped.Inc()
		b.Skip(seq)
		return nil
	}
	e, err := resourcestore.DecodeMsg(msg.Headers(), msg.Data())
	if err != nil {
		if err := f.poison(ctx, seq, subject, msg.Headers(), msg.Data(), err); err != nil {
			return err
		}
		b.Skip(seq)
		return nil
	}
	if err := b.Apply(seq, e); err != nil {
		return err
	}
	f.metrics.events.Inc()
	return nil
}

// aggregateTypeOf is the aggregate type token of an event subject <prefix>.<type>.<id>.
func aggregateTypeOf(subject, prefix string) string {
	rest, ok := strings.CutPrefix(subject, prefix+".")
	if !ok {
		return ""
	}
	typ, _, _ := strings.Cut(rest, ".")
	return typ
}

// poison counts and logs an event the model cannot apply and dead-letters it, unless it is at
// or below the last sequence in the dead-letter subject: every instance reads the same stream,
// and the first to meet the event keeps it there (the message id also de-duplicates copies
// sent within the stream's duplicate window).
func (f *follower) poison(ctx context.Context, seq uint64, subject string, h nats.Header, data []byte, reason error) error {
	f.metrics.undecodable.Inc()
	f.log.Error().Ctx(ctx).Uint64("seq", seq).Str("subject", subject).Str("reason", reason.Error()).Msg("event cannot be applied; skipped")
	if seq <= f.lastDLQSeq {
		return nil
	}
	d := projector.Delivery{Sequence: seq, Subject: subject, Header: h, Data: data}
	if err := projector.DeadLetter(ctx, f.js, f.deadLetterSubject(), f.opts.Name, d, reason); err != nil {
		return err
	}
	f.lastDLQSeq = seq
	f.metrics.deadLetters.Inc()
	if span := oteltrace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("dead_letter", oteltrace.WithAttributes(attribute.Int64("cim.sequence", int64(seq)), attribute.String("cim.reason", reason.Error())))
	}
	return nil
}

func (f *follower) deadLetterSubject() string {
	return f.opts.DeadLetter.SubjectPrefix + "." + f.opts.Name
}

// lastDeadLetter is the stream sequence of the last event in this service's dead-letter
// subject (0 if none).
func (f *follower) lastDeadLetter(ctx context.Context) (uint64, error) {
	dlq, err := f.js.Stream(ctx, f.opts.DeadLetter.Stream)
	if err != nil {
		return 0, fmt.Errorf("queryservice: dead-letter stream %s: %w", f.opts.DeadLetter.Stream, err)
	}
	m, err := dlq.GetLastMsgForSubject(ctx, f.deadLetterSubject())
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("queryservice: last dead letter: %w", err)
	}
	seq, err := strconv.ParseUint(m.Header.Get(projector.HeaderDLQStreamSeq), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("queryservice: last dead letter %d: %s header: %w", m.Sequence, projector.HeaderDLQStreamSeq, err)
	}
	return seq, nil
}

// startBatch starts the span of a batch of the model whose first event is on subject with
// headers h; a no-op while tracing is off.
func (f *follower) startBatch(ctx context.Context, subject string, h nats.Header) (context.Context, oteltrace.Span) {
	ctx, span := tracing.StartProcess(ctx, subject, h)
	if span.IsRecording() {
		span.SetAttributes(attribute.String("cim.projector", f.opts.Name), attribute.String("cim.stream", f.opts.Stream))
	}
	return ctx, span
}

// traceCommitted records a committed batch on its span: its size, the checkpoint (the model's
// sequence) and the lag behind the stream.
func (f *follower) traceCommitted(span oteltrace.Span, events int, md *jetstream.MsgMetadata) {
	span.SetAttributes(attribute.Int("messaging.batch.message_count", events),
		attribute.Int64("cim.checkpoint", int64(md.Sequence.Stream)),
		attribute.Int64("cim.lag.events", int64(md.NumPending)),
		attribute.Float64("cim.lag.seconds", time.Since(md.Timestamp).Seconds()))
}
