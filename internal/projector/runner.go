// Package projector runs a read model on a durable JetStream consumer: it fetches events in
// batches, hands them to a Sink that applies them with its checkpoint atomically, acknowledges
// only after that, dead-letters events that can never be applied, and reports lag and progress.
package projector

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cim-infra/registry/internal/tracing"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/cim-infra/registry/internal/retry"
)

// Config is a projector's consumer and batching configuration.
type Config struct {
	// Name identifies the projector in metrics, logs and dead letters (for example "neo4j").
	Name string
	// Stream is the event stream (default "CIM_EVENTS").
	Stream string
	// Durable is the durable consumer's name (default "projector-<Name>").
	Durable string
	// FilterSubject limits the consumer to some events (default: the whole stream).
	FilterSubject string
	// BatchSize is the most events applied in one batch (default 256).
	BatchSize int
	// FetchWait bounds how long one fetch waits for events (default 1s).
	FetchWait time.Duration
	// AckWait is how long the server waits for an ack before redelivering (default 30s). What a
	// stopped process held comes back after AckWait, unless ReclaimHeld gets it back earlier.
	AckWait time.Duration
	// PriorityGroup, when set, makes the consumer pinned: one client of the group receives
	// events (the active replica), another takes over when it stops pulling for PinnedTTL.
	PriorityGroup string
	// PinnedTTL is how long a silent pinned client keeps the pin (default 10s).
	PinnedTTL time.Duration
	// ReclaimHeld, when set, resets the consumer to its acknowledgement floor when deliveries
	// that a stopped process held keep events back: when they hold a fetched batch back and the
	// read model does not have them yet, or, with a priority group, when no pin is left (it
	// expired PinnedTTL after their holder's last pull). They are then delivered again at once
	// rather than after AckWait. It needs permission to publish to
	// $JS.API.CONSUMER.RESET.<Stream>.<Durable>; without it they come back after AckWait.
	ReclaimHeld bool
	// DeadLetter names the dead-letter stream.
	DeadLetter DeadLetterConfig
	// MaxBackoff caps the wait between retries of a failing batch (default 10s).
	MaxBackoff time.Duration
	// ProgressEvery is how often progress is logged while catching up (default 5s).
	ProgressEvery time.Duration
}

func (c *Config) defaults() error {
	if c.Name == "" {
		return errors.New("projector: config needs a name")
	}
	if c.Stream == "" {
		c.Stream = "CIM_EVENTS"
	}
	if c.Durable == "" {
		c.Durable = "projector-" + c.Name
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 256
	}
	if c.BatchSize > 10000 {
		return fmt.Errorf("projector: batch size %d is over 10000", c.BatchSize)
	}
	if c.FetchWait <= 0 {
		c.FetchWait = time.Second
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.PinnedTTL <= 0 {
		c.PinnedTTL = 10 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 10 * time.Second
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 5 * time.Second
	}
	c.DeadLetter.defaults()
	return nil
}

// Runner drives one Sink from one durable consumer.
type Runner struct {
	cfg     Config
	js      jetstream.JetStream
	sink    Sink
	log     zerolog.Logger
	metrics *Metrics

	mu       sync.Mutex
	applyErr error
	fetchErr error
	running  bool
	active   bool
	// rebuilding is set by Rebuild before it consumes.
	rebuilding bool
	lastSeq    uint64
	pending    uint64
}

// New builds a runner; metrics may be nil.
func New(js jetstream.JetStream, sink Sink, cfg Config, log zerolog.Logger, metrics *Metrics) (*Runner, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	r := &Runner{cfg: cfg, js: js, sink: sink, log: log.With().Str("projector", cfg.Name).Logger().Hook(tracing.LogHook), metrics: metrics}
	if metrics != nil {
		metrics.runner.Store(r)
	}
	return r, nil
}

// ConsumerConfig is the durable consumer the runner creates or updates.
func (r *Runner) ConsumerConfig() jetstream.ConsumerConfig {
	cc := jetstream.ConsumerConfig{
		Durable:       r.cfg.Durable,
		Description:   "CIM projector " + r.cfg.Name,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       r.cfg.AckWait,
		// Unlimited: a read model that is down for an hour must not lose events; events that
		// can never be applied are dead-lettered by the projector itself.
		MaxDeliver:    -1,
		MaxAckPending: r.cfg.BatchSize,
		FilterSubject: r.cfg.FilterSubject,
	}
	if r.cfg.PriorityGroup != "" {
		cc.PriorityPolicy = jetstream.PriorityPolicyPinned
		cc.PriorityGroups = []string{r.cfg.PriorityGroup}
		cc.PinnedTTL = r.cfg.PinnedTTL
	}
	return cc
}

// ResetConsumer deletes the durable consumer so that the next Run starts from the first event
// (a benchmark's replay into an emptied sink; Rebuild instead resets the consumer while it holds
// the single-active role).
func (r *Runner) ResetConsumer(ctx context.Context) error {
	err := r.js.DeleteConsumer(ctx, r.cfg.Stream, r.cfg.Durable)
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("projector: delete consumer %s: %w", r.cfg.Durable, err)
	}
	return nil
}

// Run consumes until ctx is done. It returns nil on cancellation; an error only when the
// consumer cannot be set up.
func (r *Runner) Run(ctx context.Context) error { return r.run(ctx, nil) }

// RunFrom is Run with the consumer started again at stream sequence next, whatever it delivered
// before: the caller's read model holds every event before next (a replay brought it there).
// Deliveries a stopped process held are dropped with the rest of the consumer's state, so they
// keep nothing back. It needs permission to publish to $JS.API.CONSUMER.RESET.<Stream>.<Durable>.
func (r *Runner) RunFrom(ctx context.Context, next uint64) error {
	return r.run(ctx, func(ctx context.Context, _ jetstream.Consumer) error {
		if _, err := r.js.ResetConsumerToSequence(ctx, r.cfg.Stream, r.cfg.Durable, max(next, 1)); err != nil {
			return fmt.Errorf("projector: start consumer %s at stream sequence %d: %w", r.cfg.Durable, next, err)
		}
		return nil
	})
}

// run sets up the consumer, calls prepare (if not nil) with it, and consumes until ctx is done.
func (r *Runner) run(ctx context.Context, prepare func(context.Context, jetstream.Consumer) error) error {
	if err := EnsureDeadLetterStream(ctx, r.js, r.cfg.DeadLetter); err != nil {
		return err
	}
	cons, err := r.js.CreateOrUpdateConsumer(ctx, r.cfg.Stream, r.ConsumerConfig())
	if err != nil {
		return fmt.Errorf("projector: consumer %s on %s: %w", r.cfg.Durable, r.cfg.Stream, err)
	}
	if prepare != nil {
		if err := prepare(ctx, cons); err != nil {
			return err
		}
	}
	r.restore(ctx)
	r.setRunning(true)
	defer r.setRunning(false)
	r.log.Info().Str("stream", r.cfg.Stream).Str("consumer", r.cfg.Durable).Int("batch", r.cfg.BatchSize).
		Str("priority_group", r.cfg.PriorityGroup).Uint64("checkpoint", r.LastApplied()).Msg("projector consuming")

	prog := newProgress(r.cfg.ProgressEvery)
	// A rebuild says when it has caught up, even when the stream fits in one batch.
	prog.catchingU = r.rebuilding
	for ctx.Err() == nil {
		batch, err := r.fetch(ctx, cons)
		r.setFetchErr(err)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, jetstream.ErrPinIDMismatch) {
				// Another replica holds the pin now (this one was silent past PinnedTTL, for
				// example during a long batch). The client has dropped its pin id; the next
				// fetch waits its turn in the group.
				r.log.Info().Msg("pin moved to another replica; waiting for it again")
				continue
			}
			r.log.Warn().Err(err).Msg("fetch failed")
			sleep(ctx, time.Second)
			continue
		}
		if len(batch) == 0 {
			r.observeLag(0, time.Time{})
			r.reclaimOrphans(ctx, cons)
			continue
		}
		if !r.inStreamOrder(ctx, cons, batch) {
			for _, d := range batch {
				_ = d.msg.Nak()
			}
			continue
		}
		if !r.applyBatch(ctx, batch) {
			// Shutting down with a batch not applied: hand it back at once.
			for _, d := range batch {
				_ = d.msg.Nak()
			}
			break
		}
		last := batch[len(batch)-1]
		prog.observe(r.log, len(batch), r.pendingAfter(last))
	}
	return nil
}

func (r *Runner) fetch(ctx context.Context, cons jetstream.Consumer) ([]Delivery, error) {
	opts := []jetstream.FetchOpt{jetstream.FetchMaxWait(r.cfg.FetchWait)}
	if r.cfg.PriorityGroup != "" {
		opts = append(opts, jetstream.FetchPriorityGroup(r.cfg.PriorityGroup))
	}
	mb, err := cons.Fetch(r.cfg.BatchSize, opts...)
	if err != nil {
		if errors.Is(err, jetstream.ErrPinIDMismatch) {
			r.setActive(false)
		}
		return nil, err
	}
	var batch []Delivery
	for msg := range mb.Messages() {
		md, err := msg.Metadata()
		if err != nil {
			r.log.Error().Err(err).Str("subject", msg.Subject()).Msg("message without JetStream metadata; terminated")
			_ = msg.Term()
			continue
		}
		if md.NumDelivered > 1 && r.metrics != nil {
			r.metrics.redeliveries.Inc()
		}
		if r.cfg.PriorityGroup != "" && msg.Headers().Get(headerPinID) != "" {
			r.setActive(true)
		}
		batch = append(batch, Delivery{
			Sequence:     md.Sequence.Stream,
			Subject:      msg.Subject(),
			Time:         md.Timestamp,
			Header:       msg.Headers(),
			Data:         msg.Data(),
			NumDelivered: md.NumDelivered,
			msg:          msg,
		})
		r.mu.Lock()
		r.pending = md.NumPending
		r.mu.Unlock()
	}
	// Fetch reports no error for an empty wait; an error with a partial batch still hands over
	// what arrived, which is applied and acknowledged as usual.
	if err := mb.Error(); err != nil && len(batch) == 0 {
		if errors.Is(err, jetstream.ErrPinIDMismatch) {
			r.setActive(false)
		}
		return nil, err
	}
	return batch, nil
}

// applyBatch applies batch until the sink accepts it, dead-lettering poison events on the way,
// then acknowledges it. It returns false if ctx ended first. It does so in a consumer span
// parented by the trace context stored on the batch's first event and linked to the others'.
func (r *Runner) applyBatch(ctx context.Context, batch []Delivery) bool {
	ctx, span := r.startBatch(ctx, batch)
	defer span.End()
	// Every error of the sink is retried, until ctx ends; a poison event is dead-lettered at once.
	backoff := retry.Backoff{Next: 100 * time.Millisecond, Max: r.cfg.MaxBackoff}
	deadLetters := 0
	for {
		start := time.Now()
		err := r.sink.Apply(ctx, batch)
		if err == nil {
			if span.IsRecording() {
				r.traceApplied(span, batch)
			}
			if r.metrics != nil {
				r.metrics.batchDuration.Observe(time.Since(start).Seconds())
				r.metrics.batchSize.Observe(float64(len(batch)))
				r.metrics.applied.Add(float64(len(batch)))
			}
			r.ackAll(ctx, batch)
			r.setApplied(batch[len(batch)-1], nil)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		var poison *PoisonError
		if errors.As(err, &poison) {
			rest, ok := r.deadLetterOne(ctx, batch, poison)
			if ok {
				if span.IsRecording() {
					deadLetters++
					span.AddEvent("dead_letter", trace.WithAttributes(attribute.Int64(attrSequence, int64(poison.Sequence)),
						attribute.String("cim.reason", poison.Reason.Error())))
					span.SetAttributes(attribute.Int(attrDeadLetters, deadLetters))
				}
				batch = rest
				if len(batch) == 0 {
					return true
				}
				continue
			}
		}
		if r.metrics != nil {
			r.metrics.applyErrors.Inc()
		}
		r.setApplyErr(err)
		if span.IsRecording() {
			span.AddEvent("retry", trace.WithAttributes(attribute.String("cim.error", err.Error()), attribute.String("cim.retry_in", backoff.Next.String())))
		}
		r.log.Warn().Ctx(ctx).Err(err).Uint64("first_seq", batch[0].Sequence).Int("events", len(batch)).
			Dur("retry_in", backoff.Next).Msg("apply failed; retrying")
		for _, d := range batch {
			_ = d.msg.InProgress()
		}
		if !backoff.Wait(ctx) {
			return false
		}
	}
}

// deadLetterOne moves the poisoned delivery to the dead-letter stream, acknowledges it and
// returns the batch without it.
func (r *Runner) deadLetterOne(ctx context.Context, batch []Delivery, p *PoisonError) ([]Delivery, bool) {
	for i, d := range batch {
		if d.Sequence != p.Sequence {
			continue
		}
		subject := r.cfg.DeadLetter.SubjectPrefix + "." + r.cfg.Name
		if err := deadLetter(ctx, r.js, subject, r.cfg.Name, d, p.Reason); err != nil {
			r.log.Error().Ctx(ctx).Err(err).Uint64("seq", d.Sequence).Msg("dead-letter failed; will retry")
			return batch, false
		}
		if err := d.msg.DoubleAck(ctx); err != nil {
			r.log.Warn().Ctx(ctx).Err(err).Uint64("seq", d.Sequence).Msg("ack of dead-lettered event failed")
		}
		if r.metrics != nil {
			r.metrics.deadLetters.Inc()
		}
		r.log.Error().Ctx(ctx).Uint64("seq", d.Sequence).Str("subject", d.Subject).Str("reason", p.Reason.Error()).
			Str("dead_letter_subject", subject).Msg("event dead-lettered")
		rest := append(append([]Delivery(nil), batch[:i]...), batch[i+1:]...)
		return rest, true
	}
	r.log.Error().Ctx(ctx).Uint64("seq", p.Sequence).Msg("sink named a poison event that is not in the batch")
	return batch, false
}

// ackAll acknowledges the batch. The last message is double-acked so that the server has
// recorded the ack floor before the next fetch; earlier acks are cumulative-safe to lose, since
// the sink skips anything at or below its checkpoint.
func (r *Runner) ackAll(ctx context.Context, batch []Delivery) {
	for _, d := range batch[:len(batch)-1] {
		if err := d.msg.Ack(); err != nil {
			r.log.Debug().Ctx(ctx).Err(err).Uint64("seq", d.Sequence).Msg("ack failed; redelivery will be skipped")
		}
	}
	last := batch[len(batch)-1]
	if err := last.msg.DoubleAck(ctx); err != nil {
		r.log.Warn().Ctx(ctx).Err(err).Uint64("seq", last.Sequence).Msg("ack failed; redelivery will be skipped")
	}
}

func (r *Runner) pendingAfter(Delivery) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pending
}

func (r *Runner) observeLag(pending uint64, lastTime time.Time) {
	if r.metrics == nil {
		return
	}
	r.metrics.lagEvents.Set(float64(pending))
	if pending == 0 || lastTime.IsZero() {
		r.metrics.lagSeconds.Set(0)
		return
	}
	r.metrics.lagSeconds.Set(time.Since(lastTime).Seconds())
}

// sleep waits d or until ctx ends; it reports whether the full wait passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
