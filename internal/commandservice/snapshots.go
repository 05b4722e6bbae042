package commandservice

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
