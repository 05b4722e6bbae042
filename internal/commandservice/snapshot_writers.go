package commandservice

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// snapshots reads and writes the instance's snapshots. Writes are queued and made by a few
// writer goroutines, each owning the aggregates whose id falls to it, so that the snapshots of
// one aggregate are written in the order they were taken.
type snapshots struct {
	store   *jetstore.SnapshotStore
	stream  uint64 // creation time of the event stream, unix nanoseconds
	log     zerolog.Logger
	timeout time.Duration
	reads   *prometheus.CounterVec
	writes  *prometheus.CounterVec
	bytes   prometheus.Histogram

	queues   []chan snapshotJob
	wg       sync.WaitGroup
	mu       sync.RWMutex // guards closed; held to read while sending, to write while closing
	closed   bool
	lastWarn atomic.Int64 // unix nanoseconds of the last logged write failure
}

type snapshotJob struct {
	id  uuid.UUID
	agg aggregate
}

// snapshotWriters is the number of writer goroutines; snapshotQueue bounds each one's queue.
const (
	snapshotWriters = 4
	snapshotQueue   = 1024
)

func newSnapshots(store *jetstore.SnapshotStore, stream uint64, timeout time.Duration, log zerolog.Logger, reg prometheus.Registerer) (*snapshots, error) {
	const ns, sub = "cim", "command_service"
	s := &snapshots{
		store: store, stream: stream, log: log, timeout: timeout,
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "snapshot_reads_total",
			Help: "Snapshot reads on cache misses, by outcome (hit, none, ignored, error)."}, []string{"outcome"}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "snapshot_writes_total",
			Help: "Snapshots written in the background (aggregates evicted from the cache, and those cached at shutdown), by outcome (written, dropped, too_large, error)."}, []string{"outcome"}),
		bytes: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "snapshot_bytes",
			Help: "Size of the snapshots written.", Buckets: prometheus.ExponentialBuckets(256, 4, 8)}),
	}
	for _, c := range []prometheus.Collector{s.reads, s.writes, s.bytes} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, o := range []string{SnapshotHit, SnapshotNone, SnapshotIgnored, SnapshotError} {
		s.reads.WithLabelValues(o)
	}
	for _, o := range []string{SnapshotWritten, SnapshotDropped, SnapshotTooLarge, SnapshotError} {
		s.writes.WithLabelValues(o)
	}
	s.queues = make([]chan snapshotJob, snapshotWriters)
	for i := range s.queues {
		q := make(chan snapshotJob, snapshotQueue)
		s.queues[i] = q
		s.wg.Go(func() {
			for job := range q {
				s.write(job)
			}
		})
	}
	return s, nil
}

// queue returns the queue of the aggregate's writer.
func (s *snapshots) queue(id uuid.UUID) chan snapshotJob {
	return s.queues[int(id[15])%len(s.queues)]
}

// due reports whether the aggregate has moved past its stored snapshot.
func due(a *aggregate) bool { return a.lastSeq > a.snapSeq && a.state.Registered() }

// offer queues a snapshot of an evicted aggregate without waiting; a full queue drops it.
func (s *snapshots) offer(e *entry) {
	if !due(&e.agg) {
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return
	}
	select {
	case s.queue(e.id) <- snapshotJob{id: e.id, agg: e.agg}:
	default:
		s.writes.WithLabelValues(SnapshotDropped).Inc()
	}
}

// flush queues snapshots of the given aggregates, waiting for room, then stops the writers
// and waits for them to finish, or for ctx. Later offers are dropped.
func (s *snapshots) flush(ctx context.Context, jobs []snapshotJob) error {
	var err error
	queued := 0
	s.mu.RLock()
	for _, job := range jobs {
		if s.closed {
			break
		}
		select {
		case s.queue(job.id) <- job:
			queued++
			continue
		case <-ctx.Done():
			err = fmt.Errorf("snapshots of %d of %d cached aggregates not queued: %w", len(jobs)-queued, len(jobs), ctx.Err())
		}
		break
	}
	s.mu.RUnlock()
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		for _, q := range s.queues {
			close(q)
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.Join(err, fmt.Errorf("snapshots still being written: %w", ctx.Err()))
	}
	return err
}

func (s *snapshots) write(job snapshotJob) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	size, err := putSnapshot(ctx, s.store, s.stream, job.id, &job.agg)
	switch {
	case errors.Is(err, errSnapshotTooLarge):
		s.writes.WithLabelValues(SnapshotTooLarge).Inc()
	case err != nil:
		s.writes.WithLabelValues(SnapshotError).Inc()
		s.warn(err, job.id)
	default:
		s.writes.WithLabelValues(SnapshotWritten).Inc()
		s.bytes.Observe(float64(size))
	}
}

// errSnapshotTooLarge: an encoded snapshot over maxSnapshotBytes, not written.
var errSnapshotTooLarge = errors.New("snapshot too large")

// putSnapshot encodes the aggregate and stores it as its snapshot, and returns its size.
func putSnapshot(ctx context.Context, store *jetstore.SnapshotStore, stream uint64, id uuid.UUID, a *aggregate) (int, error) {
	data, err := a.marshalSnapshot(stream)
	if err != nil {
		return 0, err
	}
	if len(data) > maxSnapshotBytes {
		return len(data), errSnapshotTooLarge
	}
	snap := jetstore.Snapshot{State: data, Sequence: a.lastSeq, SchemaVersion: snapshotSchema}
	return len(data), store.Put(ctx, resourcestore.Ref(id), snap)
}

// warn logs a failed write, at most once a minute: when the bucket is down every eviction fails.
func (s *snapshots) warn(err error, id uuid.UUID) {
	now := time.Now().UnixNano()
	last := s.lastWarn.Load()
	if now-last < int64(time.Minute) || !s.lastWarn.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn().Err(err).Str("aggregate_id", id.String()).
		Msg("snapshot not written (the aggregate's next load reads its whole history); further failures are counted in cim_command_service_snapshot_writes_total{outcome=\"error\"} and logged at most once a minute")
}
