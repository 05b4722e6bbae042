package faults

import (
	"context"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/bench"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/neo4jtest"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/nats-io/nats.go/jetstream"
)

// Environment of the soak test.
const (
	// EnvSoak turns the soak test on and says how long its load runs (a Go duration, 1m or more).
	EnvSoak = "CIM_SOAK"
	// EnvSoakOut names a directory for the soak's charts (SVG), the services' logs and their heap
	// profiles after the warm-up and at the end (default: a temporary directory, removed).
	EnvSoakOut = "CIM_SOAK_OUT"
)

const (
	// soakEvery is the period of the samples and report lines.
	soakEvery = 10 * time.Second
	// soakCacheSize is the command services' -cache-size: half the working set, so that the
	// caches are full from the first seconds on, whatever the throughput, and every instance
	// evicts (writing snapshots) and loads misses from snapshots throughout.
	soakCacheSize = (soakHot + soakCold) / 2
)

// Plateau criterion: after the warm-up (the first fifth of the samples), the mean of the second
// half of the samples may exceed that of the first half by at most these margins. Over a 15-minute
// run the halves' means are 6 minutes apart, so a heap growing by 0.15 MiB a minute, a goroutine
// or a descriptor gained every 2 minutes fails it.
const (
	plateauHeapRatio, plateauHeapMiB = 1.05, 0.5
	plateauGoroutineRatio            = 1.02
	plateauGoroutines                = 2
	plateauFDs                       = 2
)

// Names of the processes the soak samples besides the services.
const (
	procNATS = "nats"
	procLoad = "load (this process)"
)

// procSample is one process's figures at one sample.
type procSample struct {
	heapMiB    float64
	goroutines int
	fds        int
}

// soakSample is one period's figures.
type soakSample struct {
	at        time.Duration
	ops       int
	perSecond float64
	written   float64 // accepted writes per second
	p50, p99  time.Duration
	max       time.Duration
	outcomes  map[string]int64
	stream    uint64
	lag       map[string]uint64 // projector -> events behind the stream's last sequence
	load1     float64           // the machine's load average over the last minute (-1: unknown)
	procs     map[string]procSample
}

func (s soakSample) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "t=%-6s ops=%-5d %6.1f/s written=%6.1f/s p50=%-8s p99=%-8s max=%-8s stream=%-7d lag=%v load1=%.2f %v\n",
		s.at.Round(time.Second), s.ops, s.perSecond, s.written, s.p50.Round(100*time.Microsecond),
		s.p99.Round(100*time.Microsecond), s.max.Round(time.Millisecond), s.stream, s.lag, s.load1, s.outcomes)
	for _, name := range slices.Sorted(maps.Keys(s.procs)) {
		p := s.procs[name]
		fmt.Fprintf(&b, "    %-18s heap_inuse=%6.1fMiB goroutines=%-5d fds=%d\n", name, p.heapMiB, p.goroutines, p.fds)
	}
	return strings.TrimRight(b.String(), "\n")
}

// soakSystem is the system under soak: every part a child process.
type soakSystem struct {
	nats     *soakProc
	url      string
	services []*soakProc
	metrics  *soakProc
	neo4j    []*soakProc
	js       jetstream.JetStream
}

// TestSoak holds a steady load (soakLoad) on the whole system for $CIM_SOAK: an R3 cluster
// syncing every write, three command service instances, the metrics projector and, with Neo4j,
// two Neo4j projector replicas, each in a process of its own. Every 10s it prints throughput,
// latency, outcomes, the stream's size, the projectors' lag and the machine's load, and for each
// process its heap in use (after a collection), goroutines and open descriptors. It fails if a
// process of ours does not plateau (see the plateau constants), if a period after the first
// accepted no write, or if a projector has not caught up with the stream two minutes after the
// load. Off unless CIM_SOAK is set.
func TestSoak(t *testing.T) {
	spec := os.Getenv(EnvSoak)
	if spec == "" {
		t.Skipf("soak test off; run it with %s=15m go test -count=1 -run TestSoak -v -timeout 40m ./internal/faults/", EnvSoak)
	}
	d, err := time.ParseDuration(spec)
	if err != nil || d < time.Minute {
		t.Fatalf("%s=%q: want a duration of 1m or more", EnvSoak, spec)
	}
	out := os.Getenv(EnvSoakOut)
	if out == "" {
		out = t.TempDir()
	} else if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+10*time.Minute)
	defer cancel()

	sys := startSoakSystem(t, ctx, out)
	rec := newRecorder()
	rec.discard = true
	sl := newSoakLoad(1, sys.url, rec)
	sl.setup(ctx, t)
	sl.l.latencies.take()
	rec.takeCounts()

	loadCtx, stop := context.WithTimeout(ctx, d)
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		sl.run(loadCtx, t)
	}()
	start := time.Now()
	warm := max(1, int(d/soakEvery)/5)
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
			s := sys.sample(t, ctx, now.Sub(start), now.Sub(last), sl.l, rec)
			last = now
			samples = append(samples, s)
			t.Log(s)
			if len(samples) == warm {
				sys.profile(t, out, "warm")
			}
		}
	}
	<-done
	var ops, written int64
	for _, s := range samples {
		ops += int64(s.ops)
		written += s.outcomes[OutcomeOK]
	}
	t.Logf("load over %s: %d operations, %d writes accepted", d, ops, written)
	sys.profile(t, out, "end")
	sys.waitCaughtUp(t, ctx)
	writeSoakCharts(t, out, samples)
	t.Logf("charts, logs and heap profiles (after the warm-up and at the end) in %s", out)
	for _, dry := range dryPeriods(samples) {
		t.Error(dry)
	}
	report, grew := plateau(samples, warm)
	for _, line := range report {
		t.Log(line)
	}
	for _, g := range grew {
		t.Error(g)
	}
}

// startSoakSystem starts the cluster, the services and the projectors, each a child process.
func startSoakSystem(t *testing.T, ctx context.Context, out string) *soakSystem {
	t.Helper()
	sys := &soakSystem{}
	sys.nats = startSoakProc(t, procNATS, partNATS, filepath.Join(out, "nats.log"), "-store", t.TempDir())
	ready, err := sys.nats.report()
	if err != nil || ready.URL == "" {
		t.Fatalf("NATS cluster not ready: %v (log: %s)", err, filepath.Join(out, "nats.log"))
	}
	sys.url = ready.URL
	js, err := jetstream.New(natstest.Connect(t, sys.url))
	if err != nil {
		t.Fatal(err)
	}
	sys.js = js
	url := []string{"-nats-url", sys.url}
	for i := range instances {
		sys.services = append(sys.services, startSoakService(t, fmt.Sprintf("command-service-%d", i), partCommand, out,
			append(url, "-stream-replicas", "3", "-cache-size", fmt.Sprint(soakCacheSize))...))
	}
	sys.metrics = startSoakService(t, "projector-metrics", partMetrics, out, append(url, "-snapshot-replicas", "3")...)
	if withNeo4j() {
		neo4jtest.Acquire(t) // exclusive use of an empty graph
		for i := range neo4jReplicas {
			sys.neo4j = append(sys.neo4j, startSoakService(t, fmt.Sprintf("projector-neo4j-%d", i), partNeo4j, out,
				append(url, "-dead-letter-replicas", "3")...))
		}
	} else {
		t.Logf("no Neo4j (%s unset): the soak runs without the Neo4j projector", neo4jtest.EnvURI)
	}
	return sys
}

// ours lists the processes whose growth is ours to judge: every service and projector.
func (sys *soakSystem) ours() []*soakProc {
	return slices.Concat(sys.services, []*soakProc{sys.metrics}, sys.neo4j)
}

func (sys *soakSystem) all() []*soakProc { return append(sys.ours(), sys.nats) }

func (sys *soakSystem) sample(t *testing.T, ctx context.Context, at, period time.Duration, l *load, rec *recorder) soakSample {
	t.Helper()
	lat := l.latencies.take()
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	s := soakSample{
		at: at, ops: len(lat), perSecond: float64(len(lat)) / period.Seconds(),
		p50: pct(0.5), p99: pct(0.99), outcomes: rec.takeCounts(), lag: map[string]uint64{},
		procs: map[string]procSample{}, load1: loadAverage(),
	}
	s.written = float64(s.outcomes[OutcomeOK]) / period.Seconds()
	if len(lat) > 0 {
		s.max = lat[len(lat)-1]
	}
	for _, p := range sys.all() {
		r, err := p.sample()
		if err != nil {
			t.Fatalf("sample: %v", err)
		}
		s.procs[p.name] = procSample{heapMiB: float64(r.HeapInuse) / (1 << 20), goroutines: r.Goroutines, fds: r.FDs}
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.procs[procLoad] = procSample{heapMiB: float64(ms.HeapInuse) / (1 << 20), goroutines: runtime.NumGoroutine(), fds: openFDs(t)}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	lastSeq, msgs, err := sys.streamState(sctx)
	if err != nil {
		t.Logf("stream info: %v", err)
		return s
	}
	s.stream = msgs
	for name, applied := range sys.applied(sctx) {
		if lastSeq > applied {
			s.lag[name] = lastSeq - applied
		} else {
			s.lag[name] = 0
		}
	}
	return s
}

func (sys *soakSystem) streamState(ctx context.Context) (lastSeq, msgs uint64, err error) {
	st, err := sys.js.Stream(ctx, jetstore.DefaultStream)
	if err != nil {
		return 0, 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, 0, err
	}
	return info.State.LastSeq, info.State.Msgs, nil
}

// applied reads each projector's last applied sequence from its /metrics; the Neo4j replicas
// count as one projector (the active one's figure is the largest).
func (sys *soakSystem) applied(ctx context.Context) map[string]uint64 {
	out := map[string]uint64{}
	const metric = "cim_projector_last_applied_sequence"
	if v, err := sys.metrics.metric(ctx, metric); err == nil {
		out["metrics"] = uint64(v)
	}
	for _, p := range sys.neo4j {
		if v, err := p.metric(ctx, metric); err == nil && uint64(v) >= out["neo4j"] {
			out["neo4j"] = uint64(v)
		}
	}
	return out
}

// profile writes every service's heap profile to out/<name>-<label>.pprof.
func (sys *soakSystem) profile(t *testing.T, out, label string) {
	t.Helper()
	for _, p := range sys.ours() {
		if err := p.profile(filepath.Join(out, p.name+"-"+label+".pprof")); err != nil {
			t.Errorf("heap profile: %v", err)
		}
	}
}

// waitCaughtUp waits until every projector has applied the stream's last event.
func (sys *soakSystem) waitCaughtUp(t *testing.T, ctx context.Context) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		lastSeq, _, err := sys.streamState(ctx)
		behind := map[string]uint64{}
		if err == nil {
			for name, applied := range sys.applied(ctx) {
				if applied < lastSeq {
					behind[name] = lastSeq - applied
				}
			}
			if len(behind) == 0 {
				t.Logf("every projector applied the stream's last event (sequence %d)", lastSeq)
				return
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("projectors behind the stream 2m after the load: %v (stream info: %v)", behind, err)
			return
		}
		time.Sleep(time.Second)
	}
}

// loadAverage returns the machine's load average over the last minute, from /proc/loadavg
// (-1 where there is none).
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// dryPeriods lists the periods after the first that accepted no write: the workload must not
// run dry (every resource decommissioned, every command refused).
func dryPeriods(samples []soakSample) []string {
	var dry []string
	for _, s := range samples[min(1, len(samples)):] {
		if s.outcomes[OutcomeOK] == 0 {
			dry = append(dry, fmt.Sprintf("t=%s: no write accepted in the period (%v)", s.at.Round(time.Second), s.outcomes))
		}
	}
	return dry
}

// plateau compares, for every process, the mean of the second half of the samples after the
// warm-up with that of the first half. It returns a line of figures per process, and what grew
// beyond the plateau margins in a process of ours (the NATS cluster and the load are reported,
// not judged).
func plateau(samples []soakSample, warm int) (report, grew []string) {
	rest := samples[min(warm, len(samples)):]
	if len(rest) < 4 {
		return nil, []string{fmt.Sprintf("%d samples after the warm-up: the soak ran too short to judge", len(rest))}
	}
	a, b := rest[:len(rest)/2], rest[len(rest)/2:]
	mean := func(ss []soakSample, f func(soakSample) float64) float64 {
		var sum float64
		for _, s := range ss {
			sum += f(s)
		}
		return sum / float64(len(ss))
	}
	written := func(s soakSample) float64 { return s.written }
	load1 := func(s soakSample) float64 { return s.load1 }
	report = append(report, fmt.Sprintf("plateau, from t=%s: first half vs second half (accepted writes %.1f -> %.1f /s, machine load average %.1f -> %.1f)",
		rest[0].at.Round(time.Second), mean(a, written), mean(b, written), mean(a, load1), mean(b, load1)))
	for _, name := range slices.Sorted(maps.Keys(samples[0].procs)) {
		heap := func(s soakSample) float64 { return s.procs[name].heapMiB }
		gor := func(s soakSample) float64 { return float64(s.procs[name].goroutines) }
		fds := func(s soakSample) float64 { return float64(s.procs[name].fds) }
		h0, h1 := mean(a, heap), mean(b, heap)
		g0, g1 := mean(a, gor), mean(b, gor)
		f0, f1 := mean(a, fds), mean(b, fds)
		report = append(report, fmt.Sprintf("  %-20s heap in use %6.1f -> %6.1f MiB (slope %+.2f MiB/min), goroutines %5.0f -> %5.0f, fds %4.0f -> %4.0f",
			name, h0, h1, slope(rest, name), g0, g1, f0, f1))
		if name == procNATS || name == procLoad {
			continue
		}
		if h1 > h0*plateauHeapRatio+plateauHeapMiB {
			grew = append(grew, fmt.Sprintf("%s: heap in use grew from %.1f to %.1f MiB", name, h0, h1))
		}
		if g1 > g0*plateauGoroutineRatio+plateauGoroutines {
			grew = append(grew, fmt.Sprintf("%s: goroutines grew from %.0f to %.0f", name, g0, g1))
		}
		if f1 > f0+plateauFDs {
			grew = append(grew, fmt.Sprintf("%s: open descriptors grew from %.0f to %.0f", name, f0, f1))
		}
	}
	return report, grew
}

// slope is the least-squares slope of a process's heap in use, in MiB per minute.
func slope(ss []soakSample, name string) float64 {
	var n, sx, sy, sxx, sxy float64
	for _, s := range ss {
		x, y := s.at.Minutes(), s.procs[name].heapMiB
		n++
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	if d := n*sxx - sx*sx; d != 0 {
		return (n*sxy - sx*sy) / d
	}
	return math.NaN()
}

// writeSoakCharts draws the samples over time: heap in use, goroutines and descriptors of the
// processes of ours (and of the load), the NATS cluster's on a chart of its own (its figures
// dwarf ours), and throughput.
func writeSoakCharts(t *testing.T, out string, samples []soakSample) {
	t.Helper()
	if len(samples) == 0 {
		return
	}
	line := func(label, proc string, f func(procSample) float64) bench.Series {
		s := bench.Series{Name: label}
		for _, smp := range samples {
			s.X, s.Y = append(s.X, smp.at.Minutes()), append(s.Y, f(smp.procs[proc]))
		}
		return s
	}
	series := func(names []string, f func(procSample) float64) []bench.Series {
		var ss []bench.Series
		for _, name := range names {
			ss = append(ss, line(name, name, f))
		}
		return ss
	}
	ours := slices.DeleteFunc(slices.Sorted(maps.Keys(samples[0].procs)), func(n string) bool { return n == procNATS })
	heap := func(p procSample) float64 { return p.heapMiB }
	goroutines := func(p procSample) float64 { return float64(p.goroutines) }
	fds := func(p procSample) float64 { return float64(p.fds) }
	ops, written := bench.Series{Name: "operations"}, bench.Series{Name: "accepted writes"}
	for _, s := range samples {
		ops.X, ops.Y = append(ops.X, s.at.Minutes()), append(ops.Y, s.perSecond)
		written.X, written.Y = append(written.X, s.at.Minutes()), append(written.Y, s.written)
	}
	charts := []bench.Chart{
		{File: "soak-heap.svg", Title: "Soak: heap in use after a collection", XLabel: "minutes", YLabel: "MiB",
			Series: series(ours, heap)},
		{File: "soak-goroutines.svg", Title: "Soak: goroutines", XLabel: "minutes", YLabel: "goroutines",
			Series: series(ours, goroutines)},
		{File: "soak-fds.svg", Title: "Soak: open file descriptors", XLabel: "minutes", YLabel: "descriptors",
			Series: series(ours, fds)},
		{File: "soak-nats.svg", Title: "Soak: the NATS cluster's process (3 nodes)", XLabel: "minutes", YLabel: "MiB, or count",
			Series: []bench.Series{
				line("heap in use (MiB)", procNATS, heap), line("goroutines", procNATS, goroutines),
				line("descriptors", procNATS, fds),
			}},
		{File: "soak-throughput.svg", Title: "Soak: throughput", XLabel: "minutes", YLabel: "per second",
			Series: []bench.Series{ops, written}},
	}
	for _, c := range charts {
		if err := os.WriteFile(filepath.Join(out, c.File), []byte(c.SVG()), 0o644); err != nil {
			t.Errorf("write %s: %v", c.File, err)
		}
	}
}
