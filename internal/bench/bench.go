// Package bench is the whole-system benchmark of the registry: the scenarios of cmd/cimbench,
// their measurement, and the report (table, JSON, SVG charts).
//
// Every figure is measured next to its limit in the same run, on the same servers, interleaved
// or alternated with it so that both see the same background load: our code against raw
// JetStream doing the same work (same headers, same expectations, same stream), and raw
// JetStream against core NATS. The ratio is the figure's cost relative to its limit (time or
// bytes: value/limit; rates: limit/value), so 1 is the limit and every gap reads the same way.
//
// Without a NATS URL the scenarios start their own embedded servers (a single node, or a 3-node
// cluster on loopback) in the process; the memory scenario runs its server in a child process
// so that the heap it measures is the command service's alone.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/cim-infra/registry/internal/natsconn"
)

// Config holds the settings of a run.
type Config struct {
	// NATS is the server to use; with an empty URL the scenarios start embedded servers.
	NATS natsconn.Config
	// Quick selects small counts and a subset (the CI smoke run, under two minutes).
	Quick bool
	// Out is the directory the JSON report and the SVG charts are written to ("" for none).
	Out string
	// Scenarios is a comma-separated list of scenario names to run ("" for all).
	Scenarios string
	// CPUProfile, when set, is the file a CPU profile of the whole run is written to.
	CPUProfile string
	// SyncQueueLen, when above 0, sets nats.SyncQueueLen on every connection the benchmark
	// opens (the services' included). nats.go's default, 65536, makes every SubscribeSync (so
	// every batch direct get, so every jetstore load) allocate a 512 KB channel.
	SyncQueueLen int
	// Neo4jURI, Neo4jUser, Neo4jPassword and Neo4jDatabase reach the Neo4j the graph projector's
	// replay is measured against; without a URI that part is skipped.
	Neo4jURI      string
	Neo4jUser     string
	Neo4jPassword string
	Neo4jDatabase string
	// Progress receives one line per scenario as it starts and ends (nil: discarded).
	Progress io.Writer

	// sizes, when set, replaces the counts of -quick or of the full run (tests).
	sizes *sizes
}

// RegisterFlags defines the benchmark's flags on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.NATS.RegisterFlags(fs)
	fs.BoolVar(&c.Quick, "quick", c.Quick, "small counts and a subset of the cases: finishes in under two minutes (CI smoke run)")
	fs.StringVar(&c.Out, "out", c.Out, "directory to write report.json, table.md and the SVG charts to (none if empty)")
	fs.StringVar(&c.Scenarios, "scenarios", c.Scenarios, "comma-separated scenarios to run (default all): "+strings.Join(ScenarioNames(), ","))
	fs.StringVar(&c.CPUProfile, "cpuprofile", c.CPUProfile, "write a CPU profile of the run to this file")
	fs.IntVar(&c.SyncQueueLen, "sync-queue-len", c.SyncQueueLen, "nats.SyncQueueLen of every connection, services' included (0: the library's 65536); must exceed jetstore's page size (1000)")
	fs.StringVar(&c.Neo4jURI, "neo4j-uri", c.Neo4jURI, "Neo4j URI for the graph projector's replay (skipped if empty)")
	fs.StringVar(&c.Neo4jUser, "neo4j-user", c.Neo4jUser, "Neo4j user")
	fs.StringVar(&c.Neo4jPassword, "neo4j-password", c.Neo4jPassword, "Neo4j password; prefer the environment variable")
	fs.StringVar(&c.Neo4jDatabase, "neo4j-database", c.Neo4jDatabase, "Neo4j database (server default if empty)")
}

// scenario is one part of the benchmark.
type scenario struct {
	name  string
	title string
	run   func(ctx context.Context, e *env, res *ScenarioResult) error
}

func scenarios() []scenario {
	return []scenario{
		{"limits", "raw JetStream against core NATS: sync and async publish, batch direct get, ordered consumer", runLimits},
		{"store", "jetstore append (1 and 10 events) and load (10/100/1000 events, warm-cache tail read)", runStore},
		{"commands", "command round trips through the command service by concurrency and aggregate count", runCommands},
		{"growth", "load time of one 100-event aggregate as the stream grows, contiguous and spread", runGrowth},
		{"replay", "projector replay rates against a raw ordered-consumer read", runReplay},
		{"replicas", "core figures on R1, R3 and R3 with sync always", runReplicas},
		{"memory", "command service heap with its cache full, by cache size", runMemory},
		{"query", "query service: model build rate against a raw ordered-consumer read, a page of list against core NATS", runQuery},
	}
}

// ScenarioNames lists the scenarios in the order they run.
func ScenarioNames() []string {
	var names []string
	for _, s := range scenarios() {
		names = append(names, s.name)
	}
	return names
}

// ErrScenarioFailed is returned by Run when a scenario failed; the report says which and why.
var ErrScenarioFailed = errors.New("bench: scenario failed")

// Run runs the selected scenarios, prints progress, writes the report to cfg.Out if set, and
// returns it. A failing scenario does not stop the others; Run then returns the report and an
// error wrapping ErrScenarioFailed.
func Run(ctx context.Context, cfg Config, log zerolog.Logger) (*Report, error) {
	selected, err := selectScenarios(cfg.Scenarios)
	if err != nil {
		return nil, err
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return nil, fmt.Errorf("bench: cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("bench: cpu profile: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	base, cleanup, err := baseDir()
	if err != nil {
		return nil, err
	}
	defer cleanup()
	e := &env{cfg: cfg, sz: sizesFor(cfg.Quick), log: log, base: base, run: runToken()}
	if cfg.sizes != nil {
		e.sz = *cfg.sizes
	}

	rep := &Report{Command: strings.Join(os.Args, " "), Quick: cfg.Quick, Machine: machine(), Started: time.Now().UTC()}
	rep.Target = "embedded servers in this process"
	if e.external() {
		rep.Target = "NATS at " + cfg.NATS.URL
	}
	var failed []string
	for i, s := range selected {
		fmt.Fprintf(cfg.Progress, "[%d/%d] %s: %s ...\n", i+1, len(selected), s.name, s.title)
		res := ScenarioResult{Name: s.name, Title: s.title}
		start := time.Now()
		err := s.run(ctx, e, &res)
		res.Seconds = time.Since(start).Seconds()
		switch {
		case errors.Is(err, errSkipped):
			res.Skipped = strings.TrimPrefix(err.Error(), errSkipped.Error()+": ")
			fmt.Fprintf(cfg.Progress, "[%d/%d] %s: skipped (%s) after %.1fs\n", i+1, len(selected), s.name, res.Skipped, res.Seconds)
		case err != nil:
			res.Error = err.Error()
			failed = append(failed, s.name)
			fmt.Fprintf(cfg.Progress, "[%d/%d] %s: FAILED after %.1fs: %v\n", i+1, len(selected), s.name, res.Seconds, err)
		default:
			fmt.Fprintf(cfg.Progress, "[%d/%d] %s: %d figures in %.1fs\n", i+1, len(selected), s.name, len(res.Figures), res.Seconds)
		}
		rep.Scenarios = append(rep.Scenarios, res)
		if ctx.Err() != nil {
			break
		}
	}
	rep.Seconds = time.Since(rep.Started).Seconds()
	rep.Machine.LoadAfter = loadAverage()
	if cfg.Out != "" {
		if err := rep.write(cfg.Out); err != nil {
			return rep, fmt.Errorf("bench: write report to %s: %w", cfg.Out, err)
		}
	}
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	if len(failed) > 0 {
		return rep, fmt.Errorf("%w: %s", ErrScenarioFailed, strings.Join(failed, ", "))
	}
	return rep, nil
}

func selectScenarios(filter string) ([]scenario, error) {
	all := scenarios()
	if strings.TrimSpace(filter) == "" {
		return all, nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(filter, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !slices.Contains(ScenarioNames(), n) {
			return nil, fmt.Errorf("bench: unknown scenario %q in -scenarios, want some of %s", n, strings.Join(ScenarioNames(), ","))
		}
		want[n] = true
	}
	var out []scenario
	for _, s := range all {
		if want[s.name] {
			out = append(out, s)
		}
	}
	return out, nil
}

// sizes are the counts of a run.
type sizes struct {
	reps        int           // interleaved repetitions of single operations
	budget      time.Duration // time after which an interleaved measurement may stop early
	loadReps    int           // repetitions of a load
	asyncMsgs   int           // messages of an async publish or ordered-consumer read
	asyncWindow int           // async publish window (max pending acks)
	rounds      int           // alternations of a concurrent run and its limit

	cmdAggregates []int
	concurrency   []int
	cmdOpsMin     int // commands per measurement, at least
	cmdOpsPerConn int // commands per client per measurement

	growthSizes []int
	growthReps  int

	replayEvents int

	replicaKinds       []replication
	replicaConcurrency []int
	replicaAggregates  int

	cacheSizes []int
}

func sizesFor(quick bool) sizes {
	if quick {
		return sizes{
			reps: 200, budget: 2 * time.Second, loadReps: 20, asyncMsgs: 20_000, asyncWindow: 4096, rounds: 1,
			cmdAggregates: []int{1000}, concurrency: []int{1, 16, 64, 256}, cmdOpsMin: 300, cmdOpsPerConn: 3,
			growthSizes: []int{1_000, 10_000, 100_000}, growthReps: 10,
			replayEvents: 20_000,
			replicaKinds: []replication{r1, r3SyncAlways}, replicaConcurrency: []int{16}, replicaAggregates: 1000,
			cacheSizes: []int{500, 2000},
		}
	}
	return sizes{
		reps: 2000, budget: 15 * time.Second, loadReps: 200, asyncMsgs: 200_000, asyncWindow: 4096, rounds: 3,
		cmdAggregates: []int{1000, 100_000}, concurrency: []int{1, 16, 64, 256}, cmdOpsMin: 2000, cmdOpsPerConn: 20,
		growthSizes: []int{1_000, 10_000, 100_000, 1_000_000}, growthReps: 100,
		replayEvents: 200_000,
		replicaKinds: []replication{r1, r3, r3SyncAlways}, replicaConcurrency: []int{1, 64}, replicaAggregates: 1000,
		cacheSizes: []int{1000, 10_000, 100_000},
	}
}

// env is what the scenarios share: settings, counts, and where servers and names come from.
type env struct {
	cfg  Config
	sz   sizes
	log  zerolog.Logger
	base string
	run  string
	n    atomic.Int64
}

func (e *env) external() bool { return e.cfg.NATS.URL != "" }

// name returns a name unique to this run, for streams and buckets ("BENCH_<run>_<what><n>"),
// and a subject prefix that no other stream captures.
func (e *env) name(what string) (stream, prefix string) {
	n := e.n.Add(1)
	return fmt.Sprintf("BENCH_%s_%s%d", strings.ToUpper(e.run), strings.ToUpper(what), n),
		fmt.Sprintf("bench%s.%s%d", e.run, what, n)
}

// connect opens a connection to url: with the run's NATS settings (credentials, TLS) when the
// server is external.
func (e *env) connect(ctx context.Context, url string) (*nats.Conn, error) {
	opts := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond), nats.Name("cimbench")}
	if !e.external() {
		if e.cfg.SyncQueueLen > 0 {
			opts = append(opts, nats.SyncQueueLen(e.cfg.SyncQueueLen))
		}
		return nats.Connect(url, opts...)
	}
	cfg := e.cfg.NATS
	cfg.URL = url
	if cfg.Name == "" {
		cfg.Name = "cimbench"
	}
	nc, err := natsconn.Connect(ctx, cfg, zerolog.Nop())
	if err == nil && e.cfg.SyncQueueLen > 0 {
		nc.Opts.SubChanLen = e.cfg.SyncQueueLen // natsconn has no such setting; read at each SubscribeSync
	}
	return nc, err
}

// replication is a server set-up of the replicas scenario.
type replication string

const (
	r1           replication = "R1"
	r3           replication = "R3"
	r3SyncAlways replication = "R3-sync-always"
)

// target is where a scenario runs.
type target struct {
	name     replication
	url      string
	replicas int
	stop     func()
}

// single returns a one-replica target: the external server, or a new embedded node.
func (e *env) single() (*target, error) { return e.target(r1) }

// target starts (or, with an external server, describes) the servers of a replication.
func (e *env) target(kind replication) (*target, error) {
	if e.external() {
		switch kind {
		case r1:
			return &target{name: kind, url: e.cfg.NATS.URL, replicas: 1, stop: func() {}}, nil
		case r3:
			return &target{name: kind, url: e.cfg.NATS.URL, replicas: 3, stop: func() {}}, nil
		default:
			return nil, skipf("the sync policy of an external server is its own setting; see %s", r3)
		}
	}
	var (
		s   *servers
		err error
	)
	switch kind {
	case r1:
		s, err = startSingle(e.base, false)
	case r3:
		s, err = startCluster(e.base, 3, false)
	case r3SyncAlways:
		s, err = startCluster(e.base, 3, true)
	default:
		return nil, fmt.Errorf("bench: unknown replication %q", kind)
	}
	if err != nil {
		return nil, err
	}
	replicas := 1
	if kind != r1 {
		replicas = 3
	}
	return &target{name: kind, url: s.URL(), replicas: replicas, stop: s.Shutdown}, nil
}

func runToken() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), NATSServer: natsServerVersion(), LoadBefore: loadAverage()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			var kb int
			if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
				m.MemoryMB = kb / 1024
				break
			}
		}
	}
	return m
}

func loadAverage() float64 {
	var l float64
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		_, _ = fmt.Sscanf(string(b), "%f", &l)
	}
	return l
}
