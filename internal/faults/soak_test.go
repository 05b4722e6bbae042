package faults

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"
)

// EnvSoak turns the soak test on and says how long it runs (a Go duration, at least 1m).
const EnvSoak = "CIM_SOAK"

// soakEvery is the period of the soak report lines.
const soakEvery = 10 * time.Second

// soakSample is one report line's figures.
type soakSample struct {
	at         time.Duration
	ops        int64
	perSecond  float64
	p50, p99   time.Duration
	max        time.Duration
	heapInuse  uint64
	goroutines int
	fds        int
	streamMsgs uint64
	lag        uint64
	outcomes   map[string]int64
}

func (s soakSample) String() string {
	return fmt.Sprintf("t=%-6s ops=%-5d %6.1f/s p50=%-8s p99=%-8s max=%-8s heap_inuse=%5.1fMiB goroutines=%-5d fds=%-4d stream=%-6d metrics_lag=%-4d %v",
		s.at.Round(time.Second), s.ops, s.perSecond, s.p50.Round(100*time.Microsecond), s.p99.Round(100*time.Microsecond),
		s.max.Round(time.Millisecond), float64(s.heapInuse)/(1<<20), s.goroutines, s.fds, s.streamMsgs, s.lag, s.outcomes)
}

// TestSoak holds a steady load on the whole system (R3 sync-always cluster, three command
// service instances, both projectors) for $CIM_SOAK and prints throughput, latency, memory and
// goroutines every 10s; memory and goroutines must stay flat: the mean of the last third of the
// samples may exceed that of the first third by at most 50% (+16 MiB) for the heap in use and
// 10% (+20) for goroutines. Off unless CIM_SOAK is set.
func TestSoak(t *testing.T) {
	spec := os.Getenv(EnvSoak)
	if spec == "" {
		t.Skipf("soak test off; run it with %s=5m go test -run TestSoak -v -timeout 30m ./internal/faults/", EnvSoak)
	}
	d, err := time.ParseDuration(spec)
	if err != nil || d < time.Minute {
		t.Fatalf("%s=%q: want a duration of 1m or more", EnvSoak, spec)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+5*time.Minute)
	defer cancel()
	w := newWorld(t, ctx, testLogger(t), withNeo4j(), 0)
	rec := newRecorder()
	rec.discard = true
	l := newLoad(loadConfig{clients: 4, hot: 3, cold: 200}, 1, w.cluster.ClientURL(), rec)
	l.setup(ctx, t)
	l.latencies.take()
	rec.takeCounts()

	loadCtx, stop := context.WithTimeout(ctx, d)
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.run(loadCtx, t)
	}()
	start := time.Now()
	var samples []soakSample
	tick := time.NewTicker(soakEvery)
	defer tick.Stop()
	last := start
loop:
	for {
		select {
		case <-loadCtx.Done():
			break loop
		case now := <-tick.C:
			s := w.sample(now.Sub(start), now.Sub(last), l, rec)
			last = now
			samples = append(samples, s)
			t.Log(s)
		}
	}
	<-done
	w.waitSettled()
	checkFlat(t, samples)
}

func (w *world) sample(at, period time.Duration, l *load, rec *recorder) soakSample {
	lat := l.latencies.take()
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := soakSample{
		at: at, ops: int64(len(lat)), perSecond: float64(len(lat)) / period.Seconds(),
		p50: pct(0.5), p99: pct(0.99), heapInuse: ms.HeapInuse, goroutines: runtime.NumGoroutine(),
		fds: openFDs(w.t), outcomes: rec.takeCounts(),
	}
	if len(lat) > 0 {
		s.max = lat[len(lat)-1]
	}
	ctx, cancel := context.WithTimeout(w.ctx, 5*time.Second)
	defer cancel()
	if info, err := w.streamInfo(ctx); err == nil {
		s.streamMsgs = info.State.Msgs
		if seq := w.metrics.p.Sequence(); info.State.LastSeq > seq {
			s.lag = info.State.LastSeq - seq
		}
	}
	return s
}

// checkFlat compares the first and the last third of the samples.
func checkFlat(t *testing.T, samples []soakSample) {
	t.Helper()
	if len(samples) < 6 {
		t.Fatalf("%d samples: the soak ran too short to judge", len(samples))
	}
	third := len(samples) / 3
	mean := func(ss []soakSample, f func(soakSample) float64) float64 {
		var sum float64
		for _, s := range ss {
			sum += f(s)
		}
		return sum / float64(len(ss))
	}
	first, lastThird := samples[:third], samples[len(samples)-third:]
	heap := func(s soakSample) float64 { return float64(s.heapInuse) / (1 << 20) }
	gor := func(s soakSample) float64 { return float64(s.goroutines) }
	ops := func(s soakSample) float64 { return s.perSecond }
	h0, h1 := mean(first, heap), mean(lastThird, heap)
	g0, g1 := mean(first, gor), mean(lastThird, gor)
	t.Logf("first third vs last third: heap in use %.1f -> %.1f MiB, goroutines %.0f -> %.0f, throughput %.1f -> %.1f ops/s",
		h0, h1, g0, g1, mean(first, ops), mean(lastThird, ops))
	if h1 > h0*1.5+16 {
		t.Errorf("heap in use grew from %.1f to %.1f MiB", h0, h1)
	}
	if g1 > g0*1.1+20 {
		t.Errorf("goroutines grew from %.0f to %.0f", g0, g1)
	}
}
