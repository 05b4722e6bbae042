package projector

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the projector's own health figures, labelled with the projector's name.
type Metrics struct {
	applied       prometheus.Counter
	lastSeq       prometheus.Gauge
	lagEvents     prometheus.Gauge
	lagSeconds    prometheus.Gauge
	redeliveries  prometheus.Counter
	deadLetters   prometheus.Counter
	batchSize     prometheus.Histogram
	batchDuration prometheus.Histogram
	applyErrors   prometheus.Counter
	up            prometheus.GaugeFunc
	active        prometheus.GaugeFunc

	// runner is the runner the metrics describe (set by New): up and active read its state at
	// each scrape.
	runner atomic.Pointer[Runner]
}

// NewMetrics registers the projector metrics for name on reg.
func NewMetrics(reg prometheus.Registerer, name string) *Metrics {
	labels := prometheus.Labels{"projector": name}
	m := &Metrics{
		applied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cim_projector_events_applied_total", ConstLabels: labels,
			Help: "Events applied to the read model (redeliveries skipped below the checkpoint are not counted).",
		}),
		lastSeq: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cim_projector_last_applied_sequence", ConstLabels: labels,
			Help: "Stream sequence of the last event the read model holds: its checkpoint when the projector started, then the last event applied.",
		}),
		lagEvents: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cim_projector_lag_events", ConstLabels: labels,
			Help: "Events in the stream not yet delivered to the projector.",
		}),
		lagSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cim_projector_lag_seconds", ConstLabels: labels,
			Help: "Age of the last applied event while the projector is behind the stream head; 0 when caught up.",
		}),
		redeliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cim_projector_redeliveries_total", ConstLabels: labels,
			Help: "Messages delivered more than once to the projector.",
		}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cim_projector_dead_letters_total", ConstLabels: labels,
			Help: "Events the projector could not apply and kept in the dead-letter stream.",
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cim_projector_batch_size", ConstLabels: labels,
			Help:    "Events per applied batch.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000},
		}),
		batchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cim_projector_batch_duration_seconds", ConstLabels: labels,
			Help:    "Time to apply one batch and its checkpoint.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		applyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cim_projector_apply_errors_total", ConstLabels: labels,
			Help: "Failed attempts to apply a batch (transient errors, retried).",
		}),
	}
	m.up = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cim_projector_up", ConstLabels: labels,
		Help: "1 while the projector consumes (connected to NATS, its fetches answered) and its read model accepts writes, else 0; a standby that consumes is up.",
	}, func() float64 {
		if r := m.runner.Load(); r != nil {
			return r.up()
		}
		return 0
	})
	m.active = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cim_projector_active", ConstLabels: labels,
		Help: "1 while this replica is the active one (it holds the pin of its priority group, or its consumer has none), 0 while it is a standby or not consuming.",
	}, func() float64 {
		if r := m.runner.Load(); r != nil && r.Role() == RoleActive {
			return 1
		}
		return 0
	})
	reg.MustRegister(m.applied, m.lastSeq, m.lagEvents, m.lagSeconds, m.redeliveries, m.deadLetters,
		m.batchSize, m.batchDuration, m.applyErrors, m.up, m.active)
	return m
}
