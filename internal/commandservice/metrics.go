package commandservice

import (
	"slices"
	"sync"
	"time"

	"github.com/cim-infra/registry/pkg/api"
	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a request, the "outcome" label of the request counters.
const (
	OutcomeOK        = "ok"        // written, or changed nothing
	OutcomeDuplicate = "duplicate" // a re-sent command id: the first result, nothing written
	OutcomeInvalid   = "invalid"   // 400
	OutcomeNotFound  = "not_found" // 404
	OutcomeRejected  = "rejected"  // 409 by a rule of the domain
	OutcomeConflict  = "conflict"  // 409 after -max-retries concurrency conflicts
	OutcomeUnavail   = "unavailable"
	OutcomeOverload  = "overloaded"        // 503: refused unprocessed, -max-in-flight requests in progress
	OutcomeExpired   = "deadline_exceeded" // 503: the caller's deadline passed first; nothing written
	OutcomeInternal  = "internal"
)

// metrics are the service's Prometheus metrics.
type metrics struct {
	commands       *prometheus.CounterVec
	commandLatency *prometheus.HistogramVec
	queries        *prometheus.CounterVec
	queryLatency   *prometheus.HistogramVec
	conflicts      prometheus.Counter
	retries        prometheus.Counter
	cacheHits      prometheus.Counter
	cacheMisses    prometheus.Counter
	inFlight       prometheus.Gauge
	resultRecords  *prometheus.CounterVec
	// commandSeries holds each command endpoint's series, by command name; read-only once
	// built.
	commandSeries map[string]*endpointSeries
}

// outcomes lists the outcome labels, the index of endpointSeries.counts.
var outcomes = [...]string{OutcomeOK, OutcomeDuplicate, OutcomeInvalid, OutcomeNotFound, OutcomeRejected,
	OutcomeConflict, OutcomeUnavail, OutcomeOverload, OutcomeExpired, OutcomeInternal}

// endpointSeries are an endpoint's series of a request counter and of a latency histogram,
// each resolved once, on first use: WithLabelValues hashes the labels and takes the vector's
// lock, on every request. As with WithLabelValues, a series appears only once used.
type endpointSeries struct {
	name        string
	counters    *prometheus.CounterVec
	histograms  *prometheus.HistogramVec
	latencyOnce sync.Once
	latency     prometheus.Observer
	countOnce   [len(outcomes)]sync.Once
	counts      [len(outcomes)]prometheus.Counter
}

func newEndpointSeries(name string, counters *prometheus.CounterVec, histograms *prometheus.HistogramVec) *endpointSeries {
	return &endpointSeries{name: name, counters: counters, histograms: histograms}
}

// command returns the series of the command endpoint name.
func (m *metrics) command(name string) *endpointSeries {
	if e, ok := m.commandSeries[name]; ok {
		return e
	}
	return newEndpointSeries(name, m.commands, m.commandLatency) // not an endpoint: not kept
}

// observe records the time a request took.
func (e *endpointSeries) observe(d time.Duration) {
	e.latencyOnce.Do(e.resolveLatency)
	e.latency.Observe(d.Seconds())
}

func (e *endpointSeries) resolveLatency() { e.latency = e.histograms.WithLabelValues(e.name) }

// count counts a request with its outcome.
func (e *endpointSeries) count(outcome string) {
	i := slices.Index(outcomes[:], outcome)
	if i < 0 {
		e.counters.WithLabelValues(e.name, outcome).Inc()
		return
	}
	e.countOnce[i].Do(func() { e.counts[i] = e.counters.WithLabelValues(e.name, outcome) })
	e.counts[i].Inc()
}

// latencyBuckets span 100 µs to 5 s: a command is one or two store round trips.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

func newMetrics(reg prometheus.Registerer, cacheLen func() int) (*metrics, error) {
	const ns, sub = "cim", "command_service"
	m := &metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "commands_total",
			Help: "Commands handled, by command name and outcome (ok, duplicate, invalid, not_found, rejected, conflict, unavailable, overloaded, deadline_exceeded, internal)."},
			[]string{"command", "outcome"}),
		commandLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "command_duration_seconds",
			Help: "Time from receiving a command to replying, by command name.", Buckets: latencyBuckets}, []string{"command"}),
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "queries_total",
			Help: "Queries handled, by query name and outcome."}, []string{"query", "outcome"}),
		queryLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "query_duration_seconds",
			Help: "Time from receiving a query to replying, by query name.", Buckets: latencyBuckets}, []string{"query"}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "concurrency_conflicts_total",
			Help: "Appends refused because the aggregate had moved past the expected sequence."}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "retries_total",
			Help: "Commands decided and appended again after a concurrency conflict."}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "cache_hits_total",
			Help: "Requests that found their aggregate's state in the cache."}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "cache_misses_total",
			Help: "Requests that did not find their aggregate in the cache and loaded it (from its snapshot, see snapshot_reads_total, or its whole history)."}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "requests_in_flight",
			Help: "Requests accepted and not yet answered: waiting for a worker or being processed."}),
		resultRecords: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "results_records_total",
			Help: "Outcomes of commands that wrote nothing, to record in the results bucket, by result (unchanged, refusal) and outcome (recorded; existing: recorded by an earlier attempt; bucket_full: not recorded)."},
			[]string{"result", "outcome"}),
	}
	m.commandSeries = make(map[string]*endpointSeries)
	for _, name := range api.Commands() {
		m.commandSeries[name] = newEndpointSeries(name, m.commands, m.commandLatency)
	}
	cacheSize := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "cache_aggregates",
		Help: "Aggregates whose state is cached."}, func() float64 { return float64(cacheLen()) })
	for _, c := range []prometheus.Collector{m.commands, m.commandLatency, m.queries, m.queryLatency, m.conflicts,
		m.retries, m.cacheHits, m.cacheMisses, m.inFlight, m.resultRecords, cacheSize} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// outcome names the outcome label of an error reply's code and kind.
func outcome(code int, kind string) string {
	switch {
	case code == 400:
		return OutcomeInvalid
	case code == 404:
		return OutcomeNotFound
	case code == 409 && kind == api.KindConcurrency:
		return OutcomeConflict
	case code == 409:
		return OutcomeRejected
	case code == 503 && kind == api.KindOverloaded:
		return OutcomeOverload
	case code == 503 && kind == api.KindDeadlineExceeded:
		return OutcomeExpired
	case code == 503:
		return OutcomeUnavail
	default:
		return OutcomeInternal
	}
}
