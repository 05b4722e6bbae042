package commandservice

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Snapshots of aggregates (the behaviour is described in docs/architecture.md, "The command
// service in detail").
//
// Loading an aggregate whose events are spread over a large stream makes the server walk every
// message block between its first and its last event (BENCHMARKS.md, scenario growth). An
// aggregate evicted from the cache is therefore written, in the background, to a
// key-value bucket (jetstore.SnapshotStore) with everything the cache knew of it: the state and
// the command-id index that idempotency needs. A miss reads the snapshot; a command trusts it
// (load with current false: its append is conditional on the snapshot's sequence, and refresh
// checks it before any refusal), a query checks the aggregate's last event first. Snapshots are
// an optimisation: any failure to read or write one costs a full load, never a wrong reply.

// snapshotSchema is the SchemaVersion of the command service's snapshots (the encoding of
// marshalSnapshot). Snapshots of another version are ignored.
const snapshotSchema = 1

// aggregateFormat is the first byte of an encoded aggregate; see marshalSnapshot.
const aggregateFormat = 2

// maxSnapshotBytes bounds an encoded snapshot. A history of ~40 bytes per event reaches it at
// about 12,000 events; such aggregates are not snapshotted (counted as "too_large") and load
// their whole history.
const maxSnapshotBytes = 512 << 10

// Outcomes of snapshot reads and writes, the "outcome" label of the snapshot counters.
const (
	SnapshotHit      = "hit"       // read: loaded from a snapshot plus the events after it
	SnapshotNone     = "none"      // read: the aggregate had no snapshot
	SnapshotIgnored  = "ignored"   // read: unusable (other schema, corrupt, not matching the stream)
	SnapshotError    = "error"     // read or write: the bucket did not answer
	SnapshotWritten  = "written"   // write: stored
	SnapshotDropped  = "dropped"   // write: the queue was full, not stored
	SnapshotTooLarge = "too_large" // write: over maxSnapshotBytes, not stored
)

// marshalSnapshot encodes what the cache knows of the aggregate, except the results of
// commands that changed nothing (they are in the results bucket, looked up when needed).
// stream is the creation time of the event stream (unix nanoseconds): a snapshot of an earlier
// stream of the same name is not used. Format 2, with uvarint counts and lengths:
//
//	format byte, stream, lastSeq, lastEventID (16 bytes), encoded state (length-prefixed),
//	event type names (count, strings),
//	events with a command id (count; each: sequence minus the previous one, id, type index),
//	runs of those events per command (count; each: command id, first, count),
//	scattered results (count; each: command id, version, count, then type, id, sequence),
//	hashes of held values (count; 8 bytes each, little-endian).
func (a *aggregate) marshalSnapshot(stream uint64) ([]byte, error) {
	state, err := a.state.MarshalBinary()
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, 64+len(state)+20*len(a.events)+24*len(a.written)+8*len(a.everHeld))
	b = append(b, aggregateFormat)
	b = binary.AppendUvarint(b, stream)
	b = binary.AppendUvarint(b, a.lastSeq)
	b = append(b, a.lastEventID[:]...)
	b = appendBytes(b, state)

	types := map[string]uint64{}
	var names []string
	for _, e := range a.events {
		if _, ok := types[e.typ]; !ok {
			types[e.typ] = uint64(len(names))
			names = append(names, e.typ)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, n := range names {
		b = appendBytes(b, []byte(n))
	}
	b = binary.AppendUvarint(b, uint64(len(a.events)))
	prev := uint64(0)
	for _, e := range a.events {
		b = binary.AppendUvarint(b, e.seq-prev)
		b = append(b, e.id[:]...)
		b = binary.AppendUvarint(b, types[e.typ])
		prev = e.seq
	}
	b = binary.AppendUvarint(b, uint64(len(a.written)))
	for id, run := range a.written {
		b = append(b, id[:]...)
		b = binary.AppendUvarint(b, uint64(run.first))
		b = binary.AppendUvarint(b, uint64(run.count))
	}
	b = binary.AppendUvarint(b, uint64(len(a.scattered)))
	for id, r := range a.scattered {
		b = append(b, id[:]...)
		b = binary.AppendUvarint(b, r.version)
		b = binary.AppendUvarint(b, uint64(len(r.events)))
		for _, e := range r.events {
			b = appendBytes(b, []byte(e.Type))
			b = appendBytes(b, []byte(e.ID))
			b = binary.AppendUvarint(b, e.Sequence)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(a.everHeld)))
	for h := range a.everHeld {
		b = binary.LittleEndian.AppendUint64(b, h)
	}
	return b, nil
}

// unmarshalSnapshot decodes what marshalSnapshot encoded, checking that it is consistent.
func unmarshalSnapshot(data []byte) (a aggregate, stream uint64, err error) {
	r := cr.NewBinaryReader(data)
	if f := r.Byte(); f != aggregateFormat {
		return aggregate{}, 0, fmt.Errorf("unknown aggregate snapshot format %d", f)
	}
	stream = r.Uvarint()
	a.lastSeq = r.Uvarint()
	a.lastEventID = r.UUID()
	if err := a.state.UnmarshalBinary(r.Bytes()); err != nil && r.Err() == nil {
		r.Fail(err)
	}
	names := make([]string, r.Count(1))
	for i := range names {
		names[i] = string(r.Bytes())
	}
	if n := r.Count(18); n > 0 {
		a.events = make([]writtenEvent, n)
		prev := uint64(0)
		for i := range a.events {
			delta := r.Uvarint()
			if delta == 0 && r.Err() == nil {
				r.Fail(errors.New("event sequences not increasing"))
			}
			e := writtenEvent{seq: prev + delta, id: r.UUID()}
			if t := r.Uvarint(); t < uint64(len(names)) {
				e.typ = names[t]
			} else if r.Err() == nil {
				r.Fail(errors.New("event type index out of range"))
			}
			a.events[i], prev = e, e.seq
		}
		if prev > a.lastSeq && r.Err() == nil {
			r.Fail(errors.New("an event after the last sequence"))
		}
	}
	if n := r.Count(18); n > 0 {
		a.written = make(map[uuid.UUID]eventRun, n)
		for range n {
			id := r.UUID()
			first, count := r.Uvarint(), r.Uvarint()
			if (count == 0 || first+count > uint64(len(a.events))) && r.Err() == nil {
				r.Fail(errors.New("a command's run of events out of range"))
			}
			a.written[id] = eventRun{first: uint32(first), count: uint32(count)}
		}
	}
	if n := r.Count(18); n > 0 {
		a.scattered = make(map[uuid.UUID]commandResult, n)
		for range n {
			id := r.UUID()
			res := commandResult{version: r.Uvarint()}
			res.events = make([]api.EventRef, r.Count(3))
			for i := range res.events {
				res.events[i] = api.EventRef{Type: string(r.Bytes()), ID: string(r.Bytes()), Sequence: r.Uvarint()}
			}
			a.scattered[id] = res
		}
	}
	if n := r.Count(8); n > 0 {
		a.everHeld = make(map[uint64]struct{}, n)
		for range n {
			a.everHeld[r.Uint64()] = struct{}{}
		}
	}
	if r.Err() == nil && r.Len() != 0 {
		r.Fail(fmt.Errorf("%d bytes after the snapshot", r.Len()))
	}
	if r.Err() == nil && (a.lastSeq == 0 || !a.state.Registered()) {
		r.Fail(errors.New("a snapshot of an aggregate that has no event"))
	}
	if r.Err() != nil {
		return aggregate{}, 0, fmt.Errorf("corrupt aggregate snapshot: %w", r.Err())
	}
	return a, stream, nil
}

func appendBytes(b, v []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(v))), v...)
}

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

// load reads the aggregate from its snapshot. ok is false when there is no usable snapshot
// (the caller then reads the whole history); err is set only when the event stream failed.
//
// With current false the snapshot is returned unverified (agg.unverified): a command's append,
// conditional on the snapshot's sequence, tells whether it is current, and refresh verifies it
// (tail) otherwise. With current true the aggregate's last event is read too (one cheap
// request), and the stream from the snapshot's last event on when it moved.
func (s *snapshots) load(ctx context.Context, store *jetstore.Store, id uuid.UUID, current bool) (agg aggregate, ok bool, err error) {
	ref := resourcestore.Ref(id)
	snap, err := s.store.Get(ctx, ref)
	switch {
	case errors.Is(err, jetstore.ErrNoSnapshot):
		s.reads.WithLabelValues(SnapshotNone).Inc()
		return aggregate{}, false, nil
	case err != nil:
		if ctx.Err() != nil {
			return aggregate{}, false, ctx.Err()
		}
		s.reads.WithLabelValues(SnapshotError).Inc()
		return aggregate{}, false, nil
	case snap.SchemaVersion != snapshotSchema:
		s.reads.WithLabelValues(SnapshotIgnored).Inc()
		return aggregate{}, false, nil
	}
	agg, stream, err := unmarshalSnapshot(snap.State)
	switch {
	case err == nil && agg.lastSeq != snap.Sequence:
		err = fmt.Errorf("snapshot at sequence %d holds an aggregate at %d", snap.Sequence, agg.lastSeq)
	case err == nil && stream != s.stream:
		err = fmt.Errorf("snapshot of the stream created at %d, not of this one (created at %d): the stream was recreated", stream, s.stream)
	}
	if err != nil {
		s.reads.WithLabelValues(SnapshotIgnored).Inc()
		s.log.Warn().Err(err).Str("aggregate_id", id.String()).Msg("snapshot ignored; reading the whole history")
		return aggregate{}, false, nil
	}
	agg.snapSeq = snap.Sequence
	if !current {
		agg.unverified = true
		s.reads.WithLabelValues(SnapshotHit).Inc()
		return agg, true, nil
	}
	// The aggregate has usually not moved since: its last event is the snapshot's.
	last, found, err := store.LastEvent(ctx, ref)
	if err != nil {
		return aggregate{}, false, err
	}
	if found && last.Sequence == snap.Sequence && matches([]jetstore.RecordedEvent{last}, snap.Sequence, agg.lastEventID) {
		s.reads.WithLabelValues(SnapshotHit).Inc()
		return agg, true, nil
	}
	if found && last.Sequence > snap.Sequence {
		agg.unverified = true
		if ok, err := s.verify(ctx, store, id, &agg); err != nil {
			return aggregate{}, false, err
		} else if ok {
			s.reads.WithLabelValues(SnapshotHit).Inc()
			return agg, true, nil
		}
	}
	s.reads.WithLabelValues(SnapshotIgnored).Inc()
	s.log.Warn().Str("aggregate_id", id.String()).Uint64("sequence", snap.Sequence).
		Msg("snapshot ignored: the stream does not hold its last event at its sequence; reading the whole history")
	return aggregate{}, false, nil
}

// verify reads the stream from the unverified aggregate's snapshot's last event on: if that
// event is there (same sequence, same id), the events after it are folded into agg and ok is
// true; otherwise the snapshot is unusable and agg is left as it was.
func (s *snapshots) verify(ctx context.Context, store *jetstore.Store, id uuid.UUID, agg *aggregate) (ok bool, err error) {
	loaded, err := store.Load(ctx, resourcestore.Ref(id), jetstore.After(agg.snapSeq-1))
	if err != nil {
		return false, err
	}
	if !matches(loaded.Events, agg.snapSeq, agg.lastEventID) || agg.lastSeq != agg.snapSeq {
		return false, nil
	}
	verified := *agg
	if err := verified.apply(loaded.Events[1:]...); err != nil {
		return false, err
	}
	verified.unverified = false
	*agg = verified
	return true, nil
}

// matches reports whether events start with the event id at sequence seq.
func matches(events []jetstore.RecordedEvent, seq uint64, id uuid.UUID) bool {
	if len(events) == 0 || events[0].Sequence != seq {
		return false
	}
	e, err := resourcestore.FromStore(events[0])
	return err == nil && e.Meta().EventID == id
}

// openSnapshots opens (or creates) the snapshot bucket and has evicted aggregates snapshotted.
func (s *Service) openSnapshots(ctx context.Context, reg prometheus.Registerer) error {
	store, err := openSnapshotStore(ctx, s.js, s.opts.SnapshotBucket, s.store.Config().Replicas)
	if err != nil {
		return err
	}
	created, err := streamCreated(ctx, s.js, s.store.Config().Stream)
	if err != nil {
		return err
	}
	if s.snaps, err = newSnapshots(store, created, s.opts.RequestTimeout, s.log, reg); err != nil {
		return fmt.Errorf("commandservice: metrics: %w", err)
	}
	s.cache.evicted = s.snaps.offer
	return nil
}

// flushSnapshots writes the snapshots of the cached aggregates that moved past theirs, so that
// the next instance to need them does not read their whole history, then stops the writers.
// Call it once no request is in flight. It takes at most half of ctx's remaining time (the
// connection's drain needs the rest) and only logs a failure: snapshots are an optimisation.
func (s *Service) flushSnapshots(ctx context.Context) {
	if s.snaps == nil {
		return
	}
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Until(deadline)/2)
		defer cancel()
	}
	var jobs []snapshotJob
	s.cache.mu.Lock()
	for id, e := range s.cache.entries {
		if e.loaded && due(&e.agg) {
			jobs = append(jobs, snapshotJob{id: id, agg: e.agg})
		}
	}
	s.cache.mu.Unlock()
	start := time.Now()
	if err := s.snaps.flush(ctx, jobs); err != nil {
		s.log.Warn().Err(err).Int("aggregates", len(jobs)).Dur("elapsed", time.Since(start)).
			Msg("snapshots of the cached aggregates not all written; their next loads read their whole history")
		return
	}
	s.log.Info().Int("aggregates", len(jobs)).Dur("elapsed", time.Since(start)).Msg("snapshots of the cached aggregates written")
}

// openSnapshotStore opens the snapshot bucket, creating it (with the event stream's replicas) if
// it does not exist.
func openSnapshotStore(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*jetstore.SnapshotStore, error) {
	kv, err := openBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "Snapshots of aggregates evicted from the command service's cache (state and command-id index)",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("commandservice: snapshot bucket %s: %w", bucket, err)
	}
	return jetstore.OpenSnapshotStore(kv)
}

// streamCreated returns the creation time of the stream in unix nanoseconds, which tells one
// incarnation of a stream name from another.
func streamCreated(ctx context.Context, js jetstream.JetStream, name string) (uint64, error) {
	stream, err := jetstore.UntilAnswered(ctx, func(ctx context.Context) (jetstream.Stream, error) { return js.Stream(ctx, name) })
	if err != nil {
		return 0, fmt.Errorf("commandservice: stream %s: %w", name, unavailable(err))
	}
	return uint64(stream.CachedInfo().Created.UnixNano()), nil
}
