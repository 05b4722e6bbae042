package faults

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/commandservice"
	"github.com/cim-infra/registry/internal/metricsprojector"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/neo4jprojector"
	"github.com/cim-infra/registry/internal/neo4jtest"
	"github.com/cim-infra/registry/internal/projector"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/internal/tcpproxy"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
)

// Timing of the run. The ack wait is short so that a frozen projector passes it within a
// fault's slot; the service's request timeout is shorter than the client's per-attempt timeout,
// so that an attempt the client gave up on can no longer write when its retry is decided.
const (
	ackWait          = 2 * time.Second
	pinnedTTL        = 2 * time.Second
	serviceTimeout   = 5 * time.Second
	clientTimeout    = 8 * time.Second
	clientRetries    = 4
	instances        = 3
	neo4jReplicas    = 2
	recoveryDeadline = 90 * time.Second
)

// storeConfig is the event store of the run, as the command service's defaults make it in
// production: replicated, with unique keys (hostnames and asset tags claimed on cim.key.>).
var storeConfig = jetstore.Config{Replicas: 3, KeyPrefix: jetstore.DefaultKeyPrefix}

// world is one run's system: the cluster, the services, the projectors and an admin connection.
type world struct {
	t       *testing.T
	ctx     context.Context
	log     zerolog.Logger
	cluster *natstest.Cluster
	admin   *nats.Conn
	js      jetstream.JetStream
	store   *jetstore.Store

	cmd     [instances]*cmdInstance
	metrics *metricsProc
	neo4j   [neo4jReplicas]*neo4jProc
	driver  neo4j.DriverWithContext // nil without Neo4j

	cacheSize int // of the command instances; 0: the default
	// snapshotHits counts the cache misses that the stopped instances loaded from snapshots.
	mu           sync.Mutex // guards snapshotHits (instances stop concurrently)
	snapshotHits float64
}

// family returns the metric family name of an instance's registry (nil if it has no series).
func family(t *testing.T, reg *prometheus.Registry, name string) *dto.MetricFamily {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather the instance's metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f
		}
	}
	return nil
}

// snapshotHits returns the cache misses an instance loaded from snapshots.
func snapshotHits(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	for _, m := range family(t, reg, "cim_command_service_snapshot_reads_total").GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "outcome" && l.GetValue() == commandservice.SnapshotHit {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// requestsInFlight returns the requests an instance has accepted and not yet answered.
func requestsInFlight(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	const name = "cim_command_service_requests_in_flight"
	f := family(t, reg, name)
	if f == nil {
		t.Fatal("the instance has no " + name + " gauge")
	}
	return f.GetMetric()[0].GetGauge().GetValue()
}

// liveSnapshotHits is snapshotHits over the stopped and the running instances.
func (w *world) liveSnapshotHits() float64 {
	w.mu.Lock()
	n := w.snapshotHits
	w.mu.Unlock()
	for _, in := range w.cmd {
		if in != nil {
			n += snapshotHits(w.t, in.reg)
		}
	}
	return n
}

// newWorld starts the system. cacheSize is the command instances' -cache-size (0: the default);
// a small one makes most commands miss the cache and load their aggregate from its snapshot.
func newWorld(t *testing.T, ctx context.Context, log zerolog.Logger, withNeo4j bool, cacheSize int) *world {
	t.Helper()
	w := &world{t: t, ctx: ctx, log: log, cacheSize: cacheSize}
	if withNeo4j {
		w.driver = neo4jtest.Acquire(t)
		if err := neo4jprojector.EnsureSchema(ctx, w.driver, ""); err != nil {
			t.Fatalf("neo4j schema: %v", err)
		}
	}
	w.cluster = natstest.RunCluster(t, 3, natstest.SyncAlways())
	w.admin = natstest.Connect(t, w.cluster.ClientURL())
	js, err := jetstream.New(w.admin)
	if err != nil {
		t.Fatal(err)
	}
	w.js = js
	w.store, err = jetstore.New(js, storeConfig, jetstore.WithUpcasters(resourcestore.Upcasters()...))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.store.EnsureStream(ctx); err != nil {
		t.Fatalf("create the event stream: %v", err)
	}
	// Registered after the cluster's cleanup, so it runs before it: the services stop while
	// the cluster is still up, whatever way the test ends.
	t.Cleanup(w.stopAll)
	for i := range instances {
		w.startInstance(i)
	}
	w.metrics = w.startMetrics()
	if w.driver != nil {
		for i := range neo4jReplicas {
			w.neo4j[i] = w.startNeo4j(i)
		}
	}
	return w
}

// ---- command service instances

type cmdInstance struct {
	svc  *commandservice.Service
	nc   *nats.Conn
	kill *KillSwitch
	reg  *prometheus.Registry
}

func (w *world) startInstance(slot int) {
	w.t.Helper()
	ks := NewKillSwitch(jetstore.DefaultSubjectPrefix + ".")
	nc, err := nats.Connect(w.cluster.ClientURL(), nats.SetCustomDialer(ks), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond), nats.Name(fmt.Sprintf("command-service-%d", slot)))
	if err != nil {
		w.t.Fatalf("instance %d: connect: %v", slot, err)
	}
	ks.OnFire(nc.Close)
	opts := commandservice.DefaultOptions()
	opts.RequestTimeout = serviceTimeout
	if w.cacheSize > 0 {
		opts.CacheSize = w.cacheSize
	}
	ctx, cancel := context.WithTimeout(w.ctx, 60*time.Second)
	defer cancel()
	reg := prometheus.NewRegistry()
	svc, err := commandservice.New(ctx, nc, storeConfig, opts,
		w.log.With().Int("instance", slot).Logger(), reg)
	if err != nil {
		nc.Close()
		w.t.Fatalf("instance %d: start: %v", slot, err)
	}
	w.cmd[slot] = &cmdInstance{svc: svc, nc: nc, kill: ks, reg: reg}
}

// stopInstance shuts an instance down gracefully (or cleans up after a killed one).
func (w *world) stopInstance(slot int) {
	in := w.cmd[slot]
	if in == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := in.svc.Shutdown(ctx); err != nil {
		w.t.Errorf("instance %d: shutdown: %v", slot, err)
	}
	in.nc.Close()
	hits := snapshotHits(w.t, in.reg)
	w.mu.Lock()
	w.snapshotHits += hits
	w.mu.Unlock()
	w.cmd[slot] = nil
}

// ---- proxies: a projector reaches every node through a proxy of its own, so that its whole
// network can be frozen.

type proxySet []*tcpproxy.Proxy

func (w *world) newProxySet() proxySet {
	w.t.Helper()
	var ps proxySet
	for _, n := range w.cluster.Nodes {
		p, err := tcpproxy.New(strings.TrimPrefix(n.ClientURL(), "nats://"))
		if err != nil {
			w.t.Fatal(err)
		}
		w.t.Cleanup(p.Close)
		ps = append(ps, p)
	}
	return ps
}

func (ps proxySet) url() string {
	urls := make([]string, len(ps))
	for i, p := range ps {
		urls[i] = "nats://" + p.Addr()
	}
	return strings.Join(urls, ",")
}

func (ps proxySet) pause() {
	for _, p := range ps {
		p.Pause()
	}
}

func (ps proxySet) resume() {
	for _, p := range ps {
		p.Resume()
	}
}

func (w *world) connectVia(ps proxySet, name string) *nats.Conn {
	w.t.Helper()
	nc, err := nats.Connect(ps.url(), nats.IgnoreDiscoveredServers(), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond), nats.Name(name))
	if err != nil {
		w.t.Fatalf("connect %s: %v", name, err)
	}
	return nc
}

// ---- metrics projector

type metricsProc struct {
	p       *metricsprojector.Projector
	reg     *prometheus.Registry
	nc      *nats.Conn
	proxies proxySet
	cancel  context.CancelFunc
	done    chan error
	running bool
}

func (w *world) startMetrics() *metricsProc {
	w.t.Helper()
	m := &metricsProc{proxies: w.newProxySet(), reg: prometheus.NewRegistry(), done: make(chan error, 1)}
	m.start(w)
	return m
}

func (m *metricsProc) start(w *world) {
	w.t.Helper()
	m.nc = w.connectVia(m.proxies, "projector-metrics")
	js, err := jetstream.New(m.nc)
	if err != nil {
		w.t.Fatal(err)
	}
	m.reg = prometheus.NewRegistry()
	m.p, err = metricsprojector.New(js, metricsprojector.Options{
		BucketReplicas:   3,
		BatchSize:        64,
		FetchWait:        500 * time.Millisecond,
		AckWait:          ackWait,
		SnapshotEvery:    200,
		SnapshotInterval: time.Second,
		DeadLetter:       projector.DeadLetterConfig{Replicas: 3},
	}, w.log.With().Str("component", "projector-metrics").Logger(), m.reg)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.done = make(chan error, 1)
	m.running = true
	go func() { m.done <- supervise(ctx, w, "projector-metrics", m.p.Run) }()
}

// kill stops the projector as a crash would: the connection goes first, so no final snapshot
// and no last ack reach the server.
func (m *metricsProc) kill(t *testing.T) {
	if !m.running {
		return
	}
	m.running = false
	m.nc.Close()
	m.cancel()
	waitDone(t, "metrics projector", m.done)
}

// stop stops the projector gracefully.
func (m *metricsProc) stop(t *testing.T) {
	if !m.running {
		return
	}
	m.running = false
	m.cancel()
	waitDone(t, "metrics projector", m.done)
	m.nc.Close()
}

// ---- neo4j projector replicas

type neo4jProc struct {
	i       int
	runner  *projector.Runner
	driver  neo4j.DriverWithContext
	nc      *nats.Conn
	proxies proxySet
	bolt    *tcpproxy.Proxy
	cancel  context.CancelFunc
	done    chan error
	running bool
}

func (w *world) startNeo4j(i int) *neo4jProc {
	w.t.Helper()
	target := strings.TrimPrefix(os.Getenv(neo4jtest.EnvURI), "bolt://")
	bolt, err := tcpproxy.New(target)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(bolt.Close)
	n := &neo4jProc{i: i, proxies: w.newProxySet(), bolt: bolt}
	n.start(w)
	return n
}

func (n *neo4jProc) start(w *world) {
	w.t.Helper()
	auth := neo4j.NoAuth()
	if user := os.Getenv(neo4jtest.EnvUser); user != "" {
		auth = neo4j.BasicAuth(user, os.Getenv(neo4jtest.EnvPassword), "")
	}
	driver, err := neo4j.NewDriverWithContext("bolt://"+n.bolt.Addr(), auth)
	if err != nil {
		w.t.Fatal(err)
	}
	n.driver = driver
	n.nc = w.connectVia(n.proxies, "projector-neo4j-"+strconv.Itoa(n.i))
	js, err := jetstream.New(n.nc)
	if err != nil {
		w.t.Fatal(err)
	}
	cfg := neo4jprojector.Config{
		Stream: jetstore.DefaultStream, SubjectPrefix: jetstore.DefaultSubjectPrefix, BatchSize: 64,
		FetchWait: 500 * time.Millisecond, PinnedTTL: pinnedTTL, MaxBackoff: time.Second,
		ProgressEvery: 5 * time.Second, DLQStream: "CIM_DLQ", DLQReplicas: 3,
	}
	rc := cfg.RunnerConfig()
	rc.AckWait = ackWait
	log := w.log.With().Str("component", "projector-neo4j").Int("replica", n.i).Logger()
	sink := neo4jprojector.NewSink(driver, neo4jprojector.SinkConfig{Name: neo4jprojector.ProjectorName}, log)
	n.runner, err = projector.New(js, sink, rc, log, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.done = make(chan error, 1)
	n.running = true
	go func() { n.done <- supervise(ctx, w, fmt.Sprintf("projector-neo4j-%d", n.i), n.runner.Run) }()
}

func (n *neo4jProc) kill(t *testing.T) {
	if !n.running {
		return
	}
	n.running = false
	n.nc.Close()
	n.cancel()
	waitDone(t, "neo4j projector", n.done)
	_ = n.driver.Close(context.Background())
}

func (n *neo4jProc) stop(t *testing.T) {
	if !n.running {
		return
	}
	n.running = false
	n.cancel()
	waitDone(t, "neo4j projector", n.done)
	n.nc.Close()
	_ = n.driver.Close(context.Background())
}

// supervise runs a projector as a supervisor (Kubernetes) would: when it stops with an error
// (it could not start), it is started again a second later. Every restart is logged in the
// test's output.
func supervise(ctx context.Context, w *world, name string, run func(context.Context) error) error {
	for {
		err := run(ctx)
		if ctx.Err() != nil || err == nil {
			return err
		}
		w.t.Logf("%s exited with an error and is restarted: %v", name, err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

func waitDone(t *testing.T, what string, done chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s ended with: %v", what, err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not stop within 60s", what)
	}
}

// ---- the stream

func (w *world) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	s, err := w.js.Stream(ctx, jetstore.DefaultStream)
	if err != nil {
		return nil, err
	}
	return s.Info(ctx)
}

// waitStreamHealthy waits until the stream has a leader and every replica is current.
func (w *world) waitStreamHealthy() {
	w.t.Helper()
	deadline := time.Now().Add(recoveryDeadline)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(w.ctx, 5*time.Second)
		info, err := w.streamInfo(ctx)
		cancel()
		switch {
		case err != nil:
			last = err.Error()
		case info.Cluster == nil || info.Cluster.Leader == "":
			last = "no leader"
		case len(info.Cluster.Replicas) != 2:
			last = fmt.Sprintf("%d replicas besides the leader", len(info.Cluster.Replicas))
		default:
			ok := true
			for _, r := range info.Cluster.Replicas {
				if !r.Current || r.Offline {
					ok = false
					last = fmt.Sprintf("replica %s current=%v offline=%v lag=%d", r.Name, r.Current, r.Offline, r.Lag)
				}
			}
			if ok {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	w.t.Fatalf("the event stream did not recover within %s: %s", recoveryDeadline, last)
}

// active reports the Neo4j replica that applied events last (the pinned one), watching for up
// to a second; it falls back to pick among the running replicas.
func (w *world) activeNeo4j(pick int) *neo4jProc {
	before := [neo4jReplicas]uint64{}
	for i, n := range w.neo4j {
		before[i] = n.runner.LastApplied()
	}
	for range 20 {
		time.Sleep(50 * time.Millisecond)
		for i, n := range w.neo4j {
			if n.runner.LastApplied() != before[i] {
				return n
			}
		}
	}
	return w.neo4j[pick%neo4jReplicas]
}

// stopAll stops every service and projector gracefully.
func (w *world) stopAll() {
	var wg sync.WaitGroup
	for i := range instances {
		wg.Go(func() { w.stopInstance(i) })
	}
	wg.Wait()
	if w.metrics != nil {
		w.metrics.stop(w.t)
	}
	for _, n := range w.neo4j {
		if n != nil {
			n.stop(w.t)
		}
	}
}
