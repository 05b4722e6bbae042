package metricsprojector

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cim-infra/registry/internal/projector"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/internal/retry"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// replayInactiveThreshold is how long the server keeps the replay's consumer once nobody reads
// from it (after a crash mid-replay).
const replayInactiveThreshold = 10 * time.Second

// replaySuffix names the replay's consumer after the durable one ("projector-metrics-replay"):
// a fixed name, so that the permission table can grant exactly it (an ordered consumer's random
// names could only be granted with every consumer name of the stream).
const replaySuffix = "-replay"

// errReplayGap is a delivery the replay's consumer skipped (a message lost on the way: the
// consumer acknowledges nothing, so the server would not send it again).
var errReplayGap = errors.New("replay consumer skipped a delivery")

// replayer brings the state from its snapshot to the stream head before the durable consumer
// takes over. It reads S+1..head with one consumer of a fixed name (see replaySuffix): not
// durable, in memory, on one replica, without acknowledgements, as an ordered consumer is, and as
// fast (jetstore.ReadAll reads the same stream several times slower: BenchmarkReplay reports
// both, figures in BENCHMARKS.md). A delivery gap ends the read; the retry goes on from the state's sequence on a
// new consumer, as an ordered consumer would. The read is served by the stream leader, so on a
// replicated stream it sees every event up to the head. The durable consumer's ack floor may be
// anywhere relative to the snapshot: after the replay the state covers every event up to the
// head, and the sink skips every redelivery at or below that, so the result is exact either way.
type replayer struct {
	p      *Projector
	stream jetstream.Stream

	// lastDeadLettered is the highest stream sequence this projector's dead-letter subject holds.
	// The projector dead-letters undecodable events in stream order, so one at or below it was
	// dead-lettered (and counted) by an earlier run and is only skipped now.
	lastDeadLettered uint64
}

func (r *replayer) run(ctx context.Context) error {
	var err error
	if r.lastDeadLettered, err = r.lastDeadLetter(ctx); err != nil {
		return err
	}
	// Every failed replay is retried until ctx ends. Not retry.Do: a replay that succeeds may still
	// have to go on (the check below), with the pauses so far.
	backoff := retry.Backoff{Next: 100 * time.Millisecond, Max: 10 * time.Second}
	for {
		if err := r.replayToHead(ctx); err != nil {
			if ctx.Err() != nil {
				return err
			}
			// The state keeps what was applied: the retry goes on from there.
			r.p.log.Warn().Err(err).Uint64("seq", r.p.Sequence()).Dur("retry_in", backoff.Next).Msg("replay failed; retrying")
			if !backoff.Wait(ctx) {
				return ctx.Err()
			}
			continue
		}
		// Belt and braces: the consumer must not start above the state's checkpoint, or the
		// events in between would be missed. The replay reads to the head, which is at or above any
		// ack floor, so this holds unless the stream grew between the two reads; then replay more.
		floor, err := r.ackFloor(ctx)
		if err != nil {
			return err
		}
		if floor <= r.p.Sequence() {
			r.p.ops.replayPending.Set(0)
			return nil
		}
		r.p.log.Warn().Uint64("ack_floor", floor).Uint64("seq", r.p.Sequence()).Msg("consumer ack floor above the replayed state; replaying further")
	}
}

// replayToHead applies every event after the state's sequence up to the head as it is now,
// dead-letters the undecodable ones, and logs progress.
func (r *replayer) replayToHead(ctx context.Context) error {
	info, err := r.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("metricsprojector: stream %s: %w", r.p.opts.Stream, err)
	}
	head := info.State.LastSeq
	from := r.p.Sequence() + 1
	if from > head {
		return nil
	}
	prog := newReplayProgress(r.p.opts.ProgressEvery, from, head)
	r.p.log.Info().Uint64("from", from).Uint64("head", head).Uint64("events", head-from+1).Msg("replaying events after the snapshot")
	cons, err := r.openConsumer(ctx, from)
	if err != nil {
		return err
	}
	defer r.deleteConsumer(ctx)
	if cons.CachedInfo().NumPending == 0 {
		// Nothing to read from `from` on: the events up to the head were deleted.
		prog.done(r.p.log, r.p.Sequence())
		return nil
	}
	it, err := cons.Messages(
		// A consumer that vanished (server restart, inactivity) ends the read instead of waiting.
		jetstream.WithMessagesErrOnMissingHeartbeat(true))
	if err != nil {
		return fmt.Errorf("metricsprojector: replay from %d: %w", from, err)
	}
	defer it.Stop()
	for delivered := uint64(1); ; delivered++ {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return fmt.Errorf("metricsprojector: replay at %d: %w", r.p.Sequence(), err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("metricsprojector: replay at %d: %w", r.p.Sequence(), err)
		}
		if md.Sequence.Consumer != delivered {
			return fmt.Errorf("metricsprojector: replay at %d: delivery %d, want %d: %w",
				r.p.Sequence(), md.Sequence.Consumer, delivered, errReplayGap)
		}
		seq := md.Sequence.Stream
		// The same decoding as the consumer phase's, so both dead-letter the same events.
		if e, err := resourcestore.DecodeMsg(msg.Headers(), msg.Data()); err != nil {
			if err := r.poison(ctx, seq, msg.Subject(), msg.Headers(), msg.Data(), err); err != nil {
				return err
			}
		} else {
			r.p.m.mu.Lock()
			r.p.m.state.Apply(seq, e)
			r.p.m.mu.Unlock()
			r.p.applied(1)
		}
		if prog.observe(seq) {
			r.p.ops.replayPending.Set(float64(prog.remaining(seq)))
			prog.log(r.p.log, seq)
		}
		if seq >= head || md.NumPending == 0 {
			break
		}
	}
	prog.done(r.p.log, r.p.Sequence())
	return nil
}

// poison dead-letters the undecodable event at seq (unless an earlier run did) and moves the
// checkpoint over it; it is never counted in the figures.
func (r *replayer) poison(ctx context.Context, seq uint64, subject string, h nats.Header, data []byte, reason error) error {
	if seq > r.lastDeadLettered {
		if err := r.deadLetter(ctx, seq, subject, h, data, reason); err != nil {
			return err
		}
	} else {
		r.p.log.Info().Uint64("seq", seq).Msg("undecodable event already dead-lettered by an earlier run; skipped")
	}
	r.p.m.mu.Lock()
	r.p.m.state.Skip(seq)
	r.p.m.mu.Unlock()
	return nil
}

// deadLetter stores the event in the dead-letter stream as the runner does (same subject,
// headers and message id, so that the runner's own attempt at the same event is de-duplicated).
func (r *replayer) deadLetter(ctx context.Context, seq uint64, subject string, h nats.Header, data []byte, reason error) error {
	dlqSubject := r.p.opts.DeadLetter.SubjectPrefix + "." + r.p.opts.Name
	m := nats.NewMsg(dlqSubject)
	m.Data = data
	for k, v := range h {
		if k == jetstream.MsgIDHeader {
			continue
		}
		m.Header[k] = v
	}
	m.Header.Set(projector.HeaderDLQReason, reason.Error())
	m.Header.Set(projector.HeaderDLQStreamSeq, strconv.FormatUint(seq, 10))
	m.Header.Set(projector.HeaderDLQSubject, subject)
	m.Header.Set(projector.HeaderDLQProjector, r.p.opts.Name)
	if _, err := r.p.js.PublishMsg(ctx, m, jetstream.WithMsgID(r.p.opts.Name+"-"+strconv.FormatUint(seq, 10))); err != nil {
		return fmt.Errorf("metricsprojector: dead-letter stream sequence %d: %w", seq, err)
	}
	r.lastDeadLettered = seq
	r.p.ops.replayDead.Inc()
	r.p.log.Error().Uint64("seq", seq).Str("subject", subject).Str("reason", reason.Error()).
		Str("dead_letter_subject", dlqSubject).Msg("event dead-lettered")
	return nil
}

func (r *replayer) lastDeadLetter(ctx context.Context) (uint64, error) {
	dlq, err := r.p.js.Stream(ctx, r.p.opts.DeadLetter.Stream)
	if err != nil {
		return 0, fmt.Errorf("metricsprojector: dead-letter stream %s: %w", r.p.opts.DeadLetter.Stream, err)
	}
	m, err := dlq.GetLastMsgForSubject(ctx, r.p.opts.DeadLetter.SubjectPrefix+"."+r.p.opts.Name)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("metricsprojector: last dead letter: %w", err)
	}
	seq, err := strconv.ParseUint(m.Header.Get(projector.HeaderDLQStreamSeq), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("metricsprojector: last dead letter %d: %s header: %w", m.Sequence, projector.HeaderDLQStreamSeq, err)
	}
	return seq, nil
}

// ackFloor is the stream sequence up to which the durable consumer has everything acknowledged
// (0 if it does not exist yet).
func (r *replayer) ackFloor(ctx context.Context) (uint64, error) {
	c, err := r.p.js.Consumer(ctx, r.p.opts.Stream, r.p.runner.ConsumerConfig().Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("metricsprojector: consumer info: %w", err)
	}
	return c.CachedInfo().AckFloor.Stream, nil
}

// replayProgress logs the replay's progress: applied / total, rate and time left.
type replayProgress struct {
	every     time.Duration
	from      uint64
	head      uint64
	start     time.Time
	lastLog   time.Time
	countdown int
}

func newReplayProgress(every time.Duration, from, head uint64) *replayProgress {
	now := time.Now()
	return &replayProgress{every: every, from: from, head: head, start: now, lastLog: now}
}

// observe reports whether it is time to log (the clock is read once per 1024 events).
func (p *replayProgress) observe(uint64) bool {
	if p.countdown--; p.countdown > 0 {
		return false
	}
	p.countdown = 1024
	return time.Since(p.lastLog) >= p.every
}

func (p *replayProgress) remaining(seq uint64) uint64 {
	if seq >= p.head {
		return 0
	}
	return p.head - seq
}

func (p *replayProgress) log(log zerolog.Logger, seq uint64) {
	now := time.Now()
	p.lastLog = now
	applied := seq - p.from + 1
	total := p.head - p.from + 1
	rate := float64(applied) / now.Sub(p.start).Seconds()
	ev := log.Info().Uint64("applied", applied).Uint64("total", total).Uint64("remaining", p.remaining(seq)).
		Float64("events_per_s", rate)
	if rate > 0 {
		ev = ev.Dur("time_left", time.Duration(float64(p.remaining(seq))/rate*float64(time.Second)))
	}
	ev.Msg("replaying")
}

func (p *replayProgress) done(log zerolog.Logger, seq uint64) {
	took := time.Since(p.start)
	applied := uint64(0)
	if seq >= p.from {
		applied = seq - p.from + 1
	}
	log.Info().Uint64("events", applied).Uint64("seq", seq).Dur("took", took).
		Float64("events_per_s", float64(applied)/took.Seconds()).Msg("replay done")
}

// replayConsumer is the name of the replay's consumer.
func (r *replayer) replayConsumer() string {
	return r.p.runner.ConsumerConfig().Durable + replaySuffix
}

// openConsumer creates the replay's consumer, reading from stream sequence from on. A leftover of
// an earlier attempt or run is deleted first: its start sequence cannot be changed.
func (r *replayer) openConsumer(ctx context.Context, from uint64) (jetstream.Consumer, error) {
	name := r.replayConsumer()
	if err := r.p.js.DeleteConsumer(ctx, r.p.opts.Stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("metricsprojector: delete the leftover replay consumer %s: %w", name, err)
	}
	cons, err := r.p.js.CreateOrUpdateConsumer(ctx, r.p.opts.Stream, jetstream.ConsumerConfig{
		Name:          name,
		Description:   "CIM projector " + r.p.opts.Name + " replay",
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   from,
		AckPolicy:     jetstream.AckNonePolicy,
		// The live consumer's filter: the replay reads what the consumer would have read.
		FilterSubject: r.p.runner.ConsumerConfig().FilterSubject,
		// Not durable: the server drops it once nobody reads from it (nats.go's default for an
		// ordered consumer, 5 minutes, would keep the consumer of a crashed replay that long).
		InactiveThreshold: replayInactiveThreshold,
		MemoryStorage:     true,
		Replicas:          1,
	})
	if err != nil {
		return nil, fmt.Errorf("metricsprojector: replay consumer %s from %d: %w", name, from, err)
	}
	return cons, nil
}

// deleteConsumer deletes the replay's consumer from the server, with a context of its own: a
// replay cut short by its context must not leave the consumer behind either.
func (r *replayer) deleteConsumer(ctx context.Context) {
	name := r.replayConsumer()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := r.p.js.DeleteConsumer(ctx, r.p.opts.Stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		r.p.log.Warn().Err(err).Str("consumer", name).Msg("delete the replay consumer; the server drops it when inactive")
	}
}
