package queryservice

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the service's Prometheus figures (cim_query_*).
type metrics struct {
	applied     prometheus.Gauge
	head        prometheus.Gauge
	lag         prometheus.Gauge
	resources   prometheus.Gauge
	events      prometheus.Counter
	skipped     prometheus.Counter
	undecodable prometheus.Counter
	deadLetters prometheus.Counter
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	inFlight    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		applied: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cim_query_model_sequence",
			Help: "Stream sequence the model has applied."}),
		head: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cim_query_stream_head_sequence",
			Help: "Stream's last sequence as the model's reader last learned it."}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cim_query_model_lag_events",
			Help: "Events in the stream after the model's sequence (head minus applied), as the server last said."}),
		resources: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cim_query_model_resources",
			Help: "Resources in the model."}),
		events: prometheus.NewCounter(prometheus.CounterOpts{Name: "cim_query_events_applied_total",
			Help: "Events applied to the model."}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "cim_query_events_skipped_total",
			Help: "Events of aggregate types the model does not know, skipped."}),
		undecodable: prometheus.NewCounter(prometheus.CounterOpts{Name: "cim_query_events_unapplied_total",
			Help: "Events the model could not decode, skipped (and dead-lettered by the first instance that met them)."}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{Name: "cim_query_dead_letters_total",
			Help: "Events this instance wrote to the dead-letter stream."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cim_query_requests_total",
			Help: "Query requests by endpoint and outcome (ok, or the error kind)."}, []string{"endpoint", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cim_query_request_duration_seconds",
			Help:    "Time from a query's receipt to its reply, including a min_sequence wait.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}, []string{"endpoint"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cim_query_requests_in_flight",
			Help: "Query requests accepted and not yet answered: waiting for a worker, for min_sequence or being processed."}),
	}
	for _, c := range []prometheus.Collector{m.applied, m.head, m.lag, m.resources, m.events, m.skipped,
		m.undecodable, m.deadLetters, m.requests, m.duration, m.inFlight} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
