package metricsprojector

import (
	"sync"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names the projection exports (the runner adds cim_projector_*{projector="metrics"}).
const (
	MetricResources        = "cim_resources"
	MetricEvents           = "cim_events_total"
	MetricTransitions      = "cim_status_transitions_total"
	MetricStateSequence    = "cim_metrics_projector_state_sequence"
	MetricStateResources   = "cim_metrics_projector_state_resources"
	metricReplayPending    = "cim_metrics_projector_replay_pending_events"
	metricReplayDead       = "cim_metrics_projector_replay_dead_letters_total"
	metricSnapshotSeq      = "cim_metrics_projector_snapshot_sequence"
	metricSnapshotTime     = "cim_metrics_projector_snapshot_timestamp_seconds"
	metricSnapshotBytes    = "cim_metrics_projector_snapshot_bytes"
	metricSnapshotFailures = "cim_metrics_projector_snapshot_errors_total"
)

// model is the state and the lock that every reader and writer of it takes.
type model struct {
	mu    sync.Mutex
	state *State
}

// collector exports the state as it is under the lock at scrape time, so that the figures are
// the state itself: no second set of counters that could drift from it or count twice.
type collector struct {
	m           *model
	resources   *prometheus.Desc
	events      *prometheus.Desc
	transitions *prometheus.Desc
	sequence    *prometheus.Desc
	known       *prometheus.Desc

	statuses []cr.Status
	types    []cr.ResourceType
	evTypes  []string
	edges    []Transition
}

func newCollector(m *model) *collector {
	c := &collector{
		m: m,
		resources: prometheus.NewDesc(MetricResources,
			"Resources by status, resource type and category (every combination, zeros included).",
			[]string{"status", "resource_type", "category"}, nil),
		events: prometheus.NewDesc(MetricEvents,
			"Events applied to the figures, by event type (dead-lettered events are not counted).",
			[]string{"type"}, nil),
		transitions: prometheus.NewDesc(MetricTransitions,
			"Status changes applied, by the status left and the status entered.",
			[]string{"from", "to"}, nil),
		sequence: prometheus.NewDesc(MetricStateSequence,
			"Stream sequence of the last event the figures take into account (replay included).", nil, nil),
		known: prometheus.NewDesc(MetricStateResources,
			"Resources the projection knows (the sum of cim_resources).", nil, nil),
		statuses: cr.Statuses(),
		types:    cr.ResourceTypes(),
		evTypes:  cr.EventTypes(),
	}
	for _, from := range c.statuses {
		for _, to := range c.statuses {
			if from.CanTransitionTo(to) {
				c.edges = append(c.edges, Transition{From: from, To: to})
			}
		}
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.resources, c.events, c.transitions, c.sequence, c.known} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. Every status x type combination and every known event
// type and status edge is exported even at zero, so that sums and rate() see a series go to zero
// rather than vanish.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	s := c.m.state
	for _, st := range c.statuses {
		for _, rt := range c.types {
			ch <- prometheus.MustNewConstMetric(c.resources, prometheus.GaugeValue,
				float64(s.fleet[FleetKey{Status: st, Type: rt}]), st.String(), rt.String(), rt.Category().String())
		}
	}
	for _, typ := range c.evTypes {
		ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(s.events[typ]), typ)
	}
	seen := make(map[Transition]bool, len(c.edges))
	for _, t := range c.edges {
		seen[t] = true
		ch <- prometheus.MustNewConstMetric(c.transitions, prometheus.CounterValue, float64(s.transitions[t]), t.From.String(), t.To.String())
	}
	// Edges outside today's graph, if old events recorded some: counted, not hidden.
	for t, n := range s.transitions {
		if !seen[t] {
			ch <- prometheus.MustNewConstMetric(c.transitions, prometheus.CounterValue, float64(n), t.From.String(), t.To.String())
		}
	}
	ch <- prometheus.MustNewConstMetric(c.sequence, prometheus.GaugeValue, float64(s.sequence))
	ch <- prometheus.MustNewConstMetric(c.known, prometheus.GaugeValue, float64(len(s.resources)))
}

// opMetrics are the projector's own figures beyond the runner's: replay and snapshots.
type opMetrics struct {
	replayPending    prometheus.Gauge
	replayDead       prometheus.Counter
	snapshotSeq      prometheus.Gauge
	snapshotTime     prometheus.Gauge
	snapshotBytes    prometheus.Gauge
	snapshotFailures prometheus.Counter
}

func newOpMetrics(reg prometheus.Registerer) *opMetrics {
	m := &opMetrics{
		replayPending: prometheus.NewGauge(prometheus.GaugeOpts{Name: metricReplayPending,
			Help: "Events still to replay from the snapshot to the stream head at start-up; 0 once the consumer runs."}),
		replayDead: prometheus.NewCounter(prometheus.CounterOpts{Name: metricReplayDead,
			Help: "Undecodable events dead-lettered during the start-up replay (the consumer phase counts in cim_projector_dead_letters_total)."}),
		snapshotSeq: prometheus.NewGauge(prometheus.GaugeOpts{Name: metricSnapshotSeq,
			Help: "Stream sequence of the last snapshot written or loaded."}),
		snapshotTime: prometheus.NewGauge(prometheus.GaugeOpts{Name: metricSnapshotTime,
			Help: "Unix time of the last snapshot written."}),
		snapshotBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: metricSnapshotBytes,
			Help: "Compressed size of the last snapshot written or loaded."}),
		snapshotFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: metricSnapshotFailures,
			Help: "Snapshot writes that failed (retried at the next interval)."}),
	}
	reg.MustRegister(m.replayPending, m.replayDead, m.snapshotSeq, m.snapshotTime, m.snapshotBytes, m.snapshotFailures)
	return m
}
