package metricsprojector

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cim-infra/registry/internal/projector"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Defaults of Options.
const (
	DefaultName             = "metrics"
	DefaultStream           = jetstore.DefaultStream
	DefaultBucket           = "CIM_PROJECTOR_METRICS"
	DefaultBatchSize        = 256
	DefaultSnapshotEvery    = 10000
	DefaultSnapshotInterval = 30 * time.Second
	DefaultProgressEvery    = 5 * time.Second
)

// Options configure a Projector; zero fields take the defaults above.
type Options struct {
	// Name is the projector's name: durable consumer "projector-<Name>", dead letters on
	// "<prefix>.<Name>", label projector="<Name>" on the runner's metrics.
	Name string
	// Stream is the event stream.
	Stream string
	// SubjectPrefix is the events' subject prefix in Stream (default jetstore.DefaultSubjectPrefix):
	// the consumers read "<SubjectPrefix>.>", events only, never the stream's key messages.
	SubjectPrefix string
	// Bucket is the Object Store bucket that keeps the snapshot, created with BucketReplicas
	// replicas (default 1) if missing.
	Bucket         string
	BucketReplicas int
	// BatchSize is the most events the consumer applies in one batch.
	BatchSize int
	// FetchWait bounds one fetch of the consumer (runner default when zero).
	FetchWait time.Duration
	// AckWait is how long the server waits for an acknowledgement before it redelivers (runner
	// default when zero).
	AckWait time.Duration
	// SnapshotEvery and SnapshotInterval: a snapshot is written once SnapshotEvery events were
	// applied since the last one, and every SnapshotInterval if anything changed.
	SnapshotEvery    int
	SnapshotInterval time.Duration
	// ProgressEvery is how often catch-up progress is logged.
	ProgressEvery time.Duration
	// DeadLetter names the dead-letter stream (runner defaults: CIM_DLQ, cim.dlq).
	DeadLetter projector.DeadLetterConfig
}

func (o *Options) defaults() error {
	o.fillDefaults()
	switch {
	case o.BatchSize < 0:
		return fmt.Errorf("metricsprojector: batch size %d is negative", o.BatchSize)
	case o.SnapshotEvery < 0:
		return fmt.Errorf("metricsprojector: snapshot every %d events is negative", o.SnapshotEvery)
	case o.SnapshotInterval < 0:
		return fmt.Errorf("metricsprojector: snapshot interval %s is negative", o.SnapshotInterval)
	}
	return nil
}

// fillDefaults sets every zero setting to its default (the flags show these defaults too).
func (o *Options) fillDefaults() {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Stream == "" {
		o.Stream = DefaultStream
	}
	if o.Bucket == "" {
		o.Bucket = DefaultBucket
	}
	if o.BucketReplicas == 0 {
		o.BucketReplicas = 1
	}
	if o.DeadLetter.Replicas == 0 {
		o.DeadLetter.Replicas = 1
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.SnapshotEvery == 0 {
		o.SnapshotEvery = DefaultSnapshotEvery
	}
	if o.SnapshotInterval == 0 {
		o.SnapshotInterval = DefaultSnapshotInterval
	}
	if o.ProgressEvery == 0 {
		o.ProgressEvery = DefaultProgressEvery
	}
	if o.DeadLetter.Stream == "" {
		o.DeadLetter.Stream = "CIM_DLQ"
	}
	if o.DeadLetter.SubjectPrefix == "" {
		o.DeadLetter.SubjectPrefix = "cim.dlq"
	}
	if o.SubjectPrefix == "" {
		o.SubjectPrefix = jetstore.DefaultSubjectPrefix
	}
}

// Projector keeps the figures of the registry: it loads its snapshot, replays the events after
// it, then follows the stream on its durable consumer, writing snapshots as it goes.
type Projector struct {
	opts   Options
	js     jetstream.JetStream
	log    zerolog.Logger
	m      *model
	ops    *opMetrics
	runner *projector.Runner
	sink   *sink

	snaps     *snapshots
	snapMu    sync.Mutex // one snapshot write at a time
	savedSeq  uint64     // sequence of the last snapshot written or loaded (under snapMu)
	sinceSnap atomic.Int64
	kick      chan struct{}

	// noFinalSnapshot makes Run end without its final snapshot (tests: a crash).
	noFinalSnapshot atomic.Bool
	// afterReplay, if set, runs between the replay and the consumer (tests: fall behind).
	afterReplay func()
}

// New builds a projector and registers its metrics (the figures, its own and the runner's) on
// reg. It does not talk to the server.
func New(js jetstream.JetStream, opts Options, log zerolog.Logger, reg prometheus.Registerer) (*Projector, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	p := &Projector{
		opts: opts,
		js:   js,
		log:  log.With().Str("projector", opts.Name).Logger(),
		m:    &model{state: NewState()},
		ops:  newOpMetrics(reg),
		kick: make(chan struct{}, 1),
	}
	p.sink = &sink{m: p.m, applied: p.applied}
	runner, err := projector.New(js, p.sink, projector.Config{
		Name:          opts.Name,
		Stream:        opts.Stream,
		BatchSize:     opts.BatchSize,
		FetchWait:     opts.FetchWait,
		AckWait:       opts.AckWait,
		ReclaimHeld:   true,
		ProgressEvery: opts.ProgressEvery,
		DeadLetter:    opts.DeadLetter,
		// Events only: the stream's key messages (cim.key.>) are no events of any aggregate.
		FilterSubject: opts.SubjectPrefix + ".>",
	}, log, projector.NewMetrics(reg, opts.Name))
	if err != nil {
		return nil, err
	}
	p.runner = runner
	reg.MustRegister(newCollector(p.m))
	return p, nil
}

// Ready reports nil once the replay is done and the consumer runs with its last apply
// successful: the figures are then current.
func (p *Projector) Ready(ctx context.Context) error { return p.runner.Ready(ctx) }

// Role is the projector's role: active while it consumes (it is the only consumer of its
// durable), standby otherwise.
func (p *Projector) Role() projector.Role { return p.runner.Role() }

// Sequence returns the stream sequence the figures stand for.
func (p *Projector) Sequence() uint64 {
	p.m.mu.Lock()
	defer p.m.mu.Unlock()
	return p.m.state.sequence
}

// Run loads the snapshot, replays, and consumes until ctx is done; then it writes a final
// snapshot. It returns an error only if it cannot start (stream, bucket, consumer, replay).
func (p *Projector) Run(ctx context.Context) error {
	stream, err := p.waitForStream(ctx)
	if err != nil {
		return err
	}
	if err := projector.EnsureDeadLetterStream(ctx, p.js, p.opts.DeadLetter); err != nil {
		return err
	}
	if p.snaps, err = openSnapshots(ctx, p.js, p.opts.Bucket, p.opts.BucketReplicas); err != nil {
		return err
	}
	if err := p.loadSnapshot(ctx); err != nil {
		return err
	}

	loopCtx, stopLoop := context.WithCancel(ctx)
	var loop sync.WaitGroup
	loop.Go(func() { p.snapshotLoop(loopCtx) })
	defer func() {
		stopLoop()
		loop.Wait()
		p.finalSnapshot()
	}()

	r := &replayer{p: p, stream: stream}
	if err := r.run(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if p.afterReplay != nil {
		p.afterReplay()
	}
	// The state holds every event up to its sequence: the durable consumer starts right after
	// it, whatever it delivered before (a killed process's deliveries keep nothing back).
	if err := p.runner.RunFrom(ctx, p.Sequence()+1); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// waitForStream waits until the event stream exists: the command service creates it, and the
// projector may start first.
func (p *Projector) waitForStream(ctx context.Context) (jetstream.Stream, error) {
	for {
		stream, err := p.js.Stream(ctx, p.opts.Stream)
		if err == nil {
			return stream, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("metricsprojector: stream %s: %w", p.opts.Stream, err)
		}
		p.log.Warn().Str("stream", p.opts.Stream).Msg("event stream not found yet; waiting")
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("metricsprojector: waiting for stream %s: %w", p.opts.Stream, ctx.Err())
		case <-time.After(2 * time.Second):
		}
	}
}

func (p *Projector) loadSnapshot(ctx context.Context) error {
	s, size, err := p.snaps.load(ctx)
	switch {
	case errors.Is(err, ErrSnapshotSchema) || errors.Is(err, errUnreadableSnapshot):
		p.log.Warn().Err(err).Msg("snapshot ignored; rebuilding the figures from the first event")
		return nil
	case err != nil:
		return err
	case s == nil:
		p.log.Info().Str("bucket", p.opts.Bucket).Msg("no snapshot; building the figures from the first event")
		return nil
	}
	p.m.mu.Lock()
	p.m.state = s
	p.m.mu.Unlock()
	p.snapMu.Lock()
	p.savedSeq = s.sequence
	p.snapMu.Unlock()
	p.ops.snapshotSeq.Set(float64(s.sequence))
	p.ops.snapshotBytes.Set(float64(size))
	p.log.Info().Uint64("seq", s.sequence).Int("resources", s.Resources()).Int("bytes", size).Msg("snapshot loaded")
	return nil
}

// applied counts events applied since the last snapshot and wakes the snapshotter when enough
// have been.
func (p *Projector) applied(n int) {
	if p.sinceSnap.Add(int64(n)) >= int64(p.opts.SnapshotEvery) {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

func (p *Projector) snapshotLoop(ctx context.Context) {
	t := time.NewTicker(p.opts.SnapshotInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.kick:
		}
		if err := p.writeSnapshot(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn().Err(err).Msg("snapshot not written; will retry")
		}
	}
}

// writeSnapshot copies the state under the lock (so the copy is exactly the state at its
// sequence) and writes the copy outside it, so that scrapes and applies wait only for the copy.
func (p *Projector) writeSnapshot(ctx context.Context) error {
	p.snapMu.Lock()
	defer p.snapMu.Unlock()
	p.m.mu.Lock()
	if p.m.state.sequence == p.savedSeq {
		p.m.mu.Unlock()
		return nil
	}
	c := p.m.state.clone()
	p.sinceSnap.Store(0)
	p.m.mu.Unlock()

	start := time.Now()
	size, err := p.snaps.save(ctx, c)
	if err != nil {
		p.ops.snapshotFailures.Inc()
		return err
	}
	p.savedSeq = c.sequence
	p.ops.snapshotSeq.Set(float64(c.sequence))
	p.ops.snapshotBytes.Set(float64(size))
	p.ops.snapshotTime.Set(float64(time.Now().Unix()))
	p.log.Debug().Uint64("seq", c.sequence).Int("resources", c.Resources()).Int("bytes", size).
		Dur("took", time.Since(start)).Msg("snapshot written")
	return nil
}

func (p *Projector) finalSnapshot() {
	if p.noFinalSnapshot.Load() || p.snaps == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.writeSnapshot(ctx); err != nil {
		p.log.Error().Err(err).Msg("final snapshot not written; the next start replays from the previous one")
		return
	}
	p.log.Info().Uint64("seq", p.Sequence()).Msg("final snapshot written")
}
