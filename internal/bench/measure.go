package bench

import (
	"context"
	"slices"
	"sync"
	"time"
)

// sample is the durations of individual operations.
type sample struct {
	d []time.Duration
}

func (s *sample) add(d time.Duration) { s.d = append(s.d, d) }

// time runs f and records how long it took; f's error is returned as is.
func (s *sample) time(f func() error) error {
	start := time.Now()
	err := f()
	s.add(time.Since(start))
	return err
}

func (s *sample) merge(o *sample) { s.d = append(s.d, o.d...) }

func (s *sample) len() int { return len(s.d) }

// quantile returns the q-quantile (0..1) by nearest rank; 0 for an empty sample.
func (s *sample) quantile(q float64) time.Duration {
	if len(s.d) == 0 {
		return 0
	}
	sorted := slices.Clone(s.d)
	slices.Sort(sorted)
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func (s *sample) mean() time.Duration {
	if len(s.d) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range s.d {
		sum += d
	}
	return sum / time.Duration(len(s.d))
}

// latency summarises s in microseconds.
func (s *sample) latency() *Latency {
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	return &Latency{N: len(s.d), P50: us(s.quantile(0.50)), P90: us(s.quantile(0.90)), P99: us(s.quantile(0.99)), Mean: us(s.mean())}
}

// minReps is the fewest repetitions of an interleaved measurement, whatever its time budget.
const minReps = 5

// interleave runs a and b alternately n times each, recording their durations, so that both
// see the same background load (the machine is shared). Once budget has passed (0: none) it
// stops early, after at least minReps repetitions. The first error stops the run.
func interleave(n int, budget time.Duration, a, b func(i int) error) (*sample, *sample, error) {
	sa, sb := &sample{}, &sample{}
	start := time.Now()
	for i := range n {
		if i >= minReps && budget > 0 && time.Since(start) > budget {
			break
		}
		if err := sa.time(func() error { return a(i) }); err != nil {
			return nil, nil, err
		}
		if err := sb.time(func() error { return b(i) }); err != nil {
			return nil, nil, err
		}
	}
	return sa, sb, nil
}

// loadResult is the outcome of a concurrent run.
type loadResult struct {
	ops  int
	wall time.Duration
	lat  *sample
}

// rate returns operations per second.
func (r loadResult) rate() float64 { return float64(r.ops) / r.wall.Seconds() }

// concurrent runs workers goroutines, each calling op(worker, i) for i in [0, perWorker), and
// measures the wall time of the whole and the latency of every call. The first error cancels
// the rest and is returned.
func concurrent(ctx context.Context, workers, perWorker int, op func(ctx context.Context, worker, i int) error) (loadResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	samples := make([]sample, workers)
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	start := time.Now()
	for w := range workers {
		samples[w].d = make([]time.Duration, 0, perWorker)
		wg.Go(func() {
			for i := range perWorker {
				if ctx.Err() != nil {
					return
				}
				if err := samples[w].time(func() error { return op(ctx, w, i) }); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	if firstErr != nil {
		return loadResult{}, firstErr
	}
	all := &sample{d: make([]time.Duration, 0, workers*perWorker)}
	for w := range samples {
		all.merge(&samples[w])
	}
	return loadResult{ops: all.len(), wall: wall, lat: all}, nil
}

// alternate runs a and b rounds times each, in the order a b a b ..., and adds up their
// results, so that a slow spell of the shared machine hits both.
func alternate(rounds int, a, b func() (loadResult, error)) (loadResult, loadResult, error) {
	var ra, rb loadResult
	ra.lat, rb.lat = &sample{}, &sample{}
	add := func(acc *loadResult, f func() (loadResult, error)) error {
		r, err := f()
		if err != nil {
			return err
		}
		acc.ops += r.ops
		acc.wall += r.wall
		acc.lat.merge(r.lat)
		return nil
	}
	for range rounds {
		if err := add(&ra, a); err != nil {
			return ra, rb, err
		}
		if err := add(&rb, b); err != nil {
			return ra, rb, err
		}
	}
	return ra, rb, nil
}
