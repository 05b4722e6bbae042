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
	"github.com/nats-io/nats.go/jetstream"
)

// PrimeOptions tune PrimeSnapshots.
type PrimeOptions struct {
	// Bucket is the snapshot bucket (default DefaultSnapshotBucket).
	Bucket string
	// MaxAggregates bounds the aggregates folded in memory at once (default
	// DefaultPrimeMaxAggregates; each holds its state and those of its events that carry a
	// command id): a stream with more aggregates is read in several passes, each for a share of
	// them.
	MaxAggregates int
	// Writers is the number of snapshots written at once (default 32).
	Writers int
	// Progress, if set, is called after every pass and every 100,000 events read.
	Progress func(PrimeProgress)
}

// PrimeProgress is a progress report of PrimeSnapshots.
type PrimeProgress struct {
	Pass, Passes int
	EventsRead   int64 // in this pass
	StreamEvents uint64
	Written      int64 // snapshots written so far, all passes
	TooLarge     int64
}

// PrimeResult says what PrimeSnapshots did.
type PrimeResult struct {
	Passes     int
	EventsRead int64 // over all passes
	Written    int64
	TooLarge   int64 // not written: over the size bound, their loads read the whole history
	Elapsed    time.Duration
}

// PrimeSnapshots writes the snapshot of every aggregate of the event stream, as an instance
// would after evicting it, by reading the stream once per pass (jetstore.All, no consumer) and
// folding every aggregate. Run it once after importing a history or losing the bucket: the
// first load of each aggregate then reads its snapshot and the few events after it instead of
// walking the stream for its whole history. It may run while instances serve: a snapshot it
// writes that is older than the aggregate is completed by the events after it on load.
func PrimeSnapshots(ctx context.Context, js jetstream.JetStream, sc jetstore.Config, o PrimeOptions) (PrimeResult, error) {
	start := time.Now()
	if o.Bucket == "" {
		o.Bucket = DefaultSnapshotBucket
	}
	if o.MaxAggregates <= 0 {
		o.MaxAggregates = DefaultPrimeMaxAggregates
	}
	if o.Writers <= 0 {
		o.Writers = 32
	}
	store, err := jetstore.New(js, sc, jetstore.WithUpcasters(resourcestore.Upcasters()...))
	if err != nil {
		return PrimeResult{}, fmt.Errorf("commandservice: prime snapshots: %w", err)
	}
	cfg := store.Config()
	stream, err := js.Stream(ctx, cfg.Stream)
	if err != nil {
		return PrimeResult{}, fmt.Errorf("commandservice: prime snapshots: stream %s: %w", cfg.Stream, unavailable(err))
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return PrimeResult{}, fmt.Errorf("commandservice: prime snapshots: stream %s: %w", cfg.Stream, unavailable(err))
	}
	snaps, err := openSnapshotStore(ctx, js, o.Bucket, cfg.Replicas)
	if err != nil {
		return PrimeResult{}, fmt.Errorf("commandservice: prime snapshots: %w", err)
	}
	created := uint64(info.Created.UnixNano())

	// Passes split the aggregates by the last byte of their id.
	passes := min(256, max(1, (int(info.State.NumSubjects)+o.MaxAggregates-1)/o.MaxAggregates))
	var res PrimeResult
	var written, tooLarge atomic.Int64
	report := func(pass int, read int64) {
		if o.Progress != nil {
			o.Progress(PrimeProgress{Pass: pass, Passes: passes, EventsRead: read, StreamEvents: info.State.Msgs,
				Written: written.Load(), TooLarge: tooLarge.Load()})
		}
	}
	for pass := range passes {
		aggs := map[uuid.UUID]*aggregate{}
		var read int64
		for rec, err := range store.All(ctx, 1) {
			if err != nil {
				return res, fmt.Errorf("commandservice: prime snapshots: %w", err)
			}
			read++
			if read%100_000 == 0 {
				report(pass+1, read)
			}
			id, err := uuid.Parse(rec.Aggregate.ID)
			if err != nil || rec.Aggregate.Type != resourcestore.AggregateType || int(id[15])%passes != pass {
				continue
			}
			a := aggs[id]
			if a == nil {
				a = &aggregate{}
				aggs[id] = a
			}
			if err := a.apply(rec); err != nil {
				return res, fmt.Errorf("commandservice: prime snapshots: event %d of %s: %w", rec.Sequence, id, err)
			}
		}
		res.EventsRead += read
		if err := writeSnapshots(ctx, snaps, created, aggs, o.Writers, &written, &tooLarge); err != nil {
			return res, err
		}
		report(pass+1, read)
	}
	res.Passes, res.Written, res.TooLarge, res.Elapsed = passes, written.Load(), tooLarge.Load(), time.Since(start)
	return res, nil
}

// writeSnapshots writes the snapshots of aggs with the given number of writers.
func writeSnapshots(ctx context.Context, snaps *jetstore.SnapshotStore, stream uint64, aggs map[uuid.UUID]*aggregate, writers int, written, tooLarge *atomic.Int64) error {
	jobs := make(chan uuid.UUID)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range writers {
		wg.Go(func() {
			for id := range jobs {
				a := aggs[id]
				if !a.state.Registered() {
					continue // events of an aggregate never registered: nothing to load quickly
				}
				_, err := putSnapshot(ctx, snaps, stream, id, a)
				if errors.Is(err, errSnapshotTooLarge) {
					tooLarge.Add(1)
					continue
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("commandservice: prime snapshots: %s: %w", id, err)
					}
					mu.Unlock()
					continue
				}
				written.Add(1)
			}
		})
	}
	for id := range aggs {
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed || ctx.Err() != nil {
			break
		}
		jobs <- id
	}
	close(jobs)
	wg.Wait()
	return errors.Join(firstErr, ctx.Err())
}
