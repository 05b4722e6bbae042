package bench

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// memoryHistory is the average number of events per aggregate in the memory scenario.
const memoryHistory = 10

// runMemory measures the heap of the command service with its cache full, for each cache size:
// one stream holds the largest number of aggregates (about ten events each, contiguous: the
// layout changes load times, not the cache); for each size a fresh service instance with that
// cache size loads that many aggregates (get queries). The live heap after full collections
// (runtime.ReadMemStats) gives the bytes per cached aggregate and the peak with the cache full.
// The NATS server runs in a child process, so that the heap is the service's (and the
// benchmark's, which is the same before and after).
func runMemory(ctx context.Context, e *env, res *ScenarioResult) error {
	t := &target{name: r1, replicas: 1, stop: func() {}}
	if e.external() {
		t.url = e.cfg.NATS.URL
	} else {
		c, err := startChild(e.base)
		if err != nil {
			return err
		}
		defer c.stop()
		t.url = c.url
	}
	sizes := slices.Clone(e.sz.cacheSizes)
	slices.Sort(sizes)
	largest := sizes[len(sizes)-1]
	b, err := startCommands(ctx, e, t, largest, memoryHistory, sizes[0], contiguous)
	if err != nil {
		return err
	}
	defer b.close()
	stream, err := b.js.Stream(ctx, b.sc.Stream)
	if err != nil {
		return err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return err
	}
	storedPerAgg := float64(info.State.Bytes) / float64(largest)
	ids := b.ids()

	chart := Chart{File: "memory-cache.svg", Title: "Command service live heap after GC, by cache size",
		XLabel: "aggregates in the cache (log scale)", YLabel: "MB", LogX: true,
		Series: []Series{{Name: "live heap, cache full"}, {Name: "live heap, instance started"}, {Name: "started + stored bytes of the cached aggregates"}}}
	for _, n := range sizes {
		b.stopService()
		reg := prometheus.NewRegistry()
		if err := b.startService(ctx, n, reg); err != nil {
			return err
		}
		started := liveHeap()
		// The first tenth of the aggregates also pays for what the instance allocates once (pools,
		// buffers); the growth is measured over the other nine tenths.
		first := max(n/10, 1)
		if err := b.warmIDs(ctx, ids[:first]); err != nil {
			return fmt.Errorf("fill a cache of %d: %w", n, err)
		}
		before := liveHeap()
		if err := b.warmIDs(ctx, ids[first:n]); err != nil {
			return fmt.Errorf("fill a cache of %d: %w", n, err)
		}
		if got := gauge(reg, "cim_command_service_cache_aggregates"); got != float64(n) {
			return fmt.Errorf("cache holds %.0f aggregates, want %d", got, n)
		}
		after := liveHeap()
		perAgg := float64(int64(after.alloc)-int64(before.alloc)) / float64(n-first)
		f := newFigure(fmt.Sprintf("heap per cached aggregate, cache of %d", n), perAgg, "B", "stored bytes per aggregate (its events in the stream)", storedPerAgg, false)
		f.Note = fmt.Sprintf("live heap after GC: %.1f MB started, %.1f MB with the cache full (heap spans in use: %.1f MB); %.1f events per aggregate",
			mb(started.alloc), mb(after.alloc), mb(after.inuse), float64(b.events)/float64(largest))
		res.Figures = append(res.Figures, f)
		for i, y := range []float64{mb(after.alloc), mb(started.alloc), mb(started.alloc) + float64(n)*storedPerAgg/(1<<20)} {
			chart.Series[i].X = append(chart.Series[i].X, float64(n))
			chart.Series[i].Y = append(chart.Series[i].Y, y)
		}
	}
	last := res.Figures[len(res.Figures)-1]
	peak := chart.Series[0].Y[len(sizes)-1]
	ref := chart.Series[2].Y[len(sizes)-1]
	f := newFigure(fmt.Sprintf("peak live heap, cache full of %d", largest), peak, "MB", "started + stored bytes of the cached aggregates", ref, false)
	f.Note = last.Note
	res.Figures = append(res.Figures, f)
	res.Charts = append(res.Charts, chart)
	return nil
}

// ids lists the aggregates of every lane, lane by lane.
func (b *cmdBench) ids() []string {
	var ids []string
	for _, g := range b.lanes {
		for _, id := range g.IDs() {
			ids = append(ids, id.String())
		}
	}
	return ids
}

// heap is the heap after full collections: live objects (HeapAlloc) and the spans holding them
// (HeapInuse).
type heap struct{ alloc, inuse uint64 }

// liveHeap collects garbage until the live heap stops shrinking, then reads it.
func liveHeap() heap {
	var m runtime.MemStats
	prev := uint64(1<<63 - 1)
	for range 5 {
		runtime.GC()
		runtime.ReadMemStats(&m)
		if m.HeapAlloc >= prev {
			break
		}
		prev = m.HeapAlloc
		time.Sleep(5 * time.Millisecond)
	}
	return heap{alloc: m.HeapAlloc, inuse: m.HeapInuse}
}

func mb(b uint64) float64 { return float64(b) / (1 << 20) }

// gauge reads the value of a gauge without labels from reg (0 if absent).
func gauge(reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}
