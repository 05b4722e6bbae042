package metricsprojector

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// figures are scraped series of the three projection families, keyed by
// name{label="value",...} with labels sorted; zero values are left out, so that a figure that
// was never touched and one exported as 0 compare equal.
type figures map[string]float64

var projectionFamilies = []string{MetricResources, MetricEvents, MetricTransitions}

func gatherFigures(t *testing.T, g prometheus.Gatherer) figures {
	t.Helper()
	f, err := scrape(g)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func scrape(g prometheus.Gatherer) (figures, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, fmt.Errorf("gather: %w", err)
	}
	out := figures{}
	for _, mf := range mfs {
		if !slices.Contains(projectionFamilies, mf.GetName()) {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			slices.Sort(labels)
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			if v != 0 {
				out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
			}
		}
	}
	return out, nil
}

// figuresOf scrapes a state through the real collector.
func figuresOf(s *State) figures {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(&model{state: s}))
	f, err := scrape(reg)
	if err != nil {
		panic(err)
	}
	return f
}

func equalFigures(a, b figures) bool { return maps.Equal(a, b) }

// expected computes the figures independently of the projector: the fleet from the domain's
// fold of every resource (workload's States), the counters from the events that were written.
type expected struct {
	events      map[string]float64
	transitions map[[2]string]float64
	fleet       map[[3]string]float64
}

func newExpected() *expected {
	return &expected{events: map[string]float64{}, transitions: map[[2]string]float64{}, fleet: map[[3]string]float64{}}
}

func (x *expected) count(e cr.Event) {
	x.events[e.EventType()]++
	if sc, ok := e.(cr.StatusChanged); ok {
		x.transitions[[2]string{sc.From.String(), sc.To.String()}]++
	}
}

func (x *expected) fleetFrom(states map[uuid.UUID]cr.State) {
	clear(x.fleet)
	for _, s := range states {
		x.fleet[[3]string{s.Status().String(), s.Type().String(), s.Type().Category().String()}]++
	}
}

func (x *expected) figures() figures {
	out := figures{}
	for k, v := range x.fleet {
		out[fmt.Sprintf(`cim_resources{category=%q,resource_type=%q,status=%q}`, k[2], k[1], k[0])] = v
	}
	for k, v := range x.events {
		out[fmt.Sprintf(`cim_events_total{type=%q}`, k)] = v
	}
	for k, v := range x.transitions {
		out[fmt.Sprintf(`cim_status_transitions_total{from=%q,to=%q}`, k[0], k[1])] = v
	}
	return out
}

func (x *expected) total() float64 {
	var n float64
	for _, v := range x.events {
		n += v
	}
	return n
}

// check compares scraped figures with the expected ones and reports every difference.
func (x *expected) check(t *testing.T, got figures) {
	t.Helper()
	want := x.figures()
	if len(want) == 0 {
		t.Fatal("nothing expected: the history is empty")
	}
	keys := slices.Sorted(maps.Keys(want))
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	bad := 0
	for _, k := range keys {
		if got[k] != want[k] {
			bad++
			if bad <= 10 {
				t.Errorf("%s = %v, want %v", k, got[k], want[k])
			}
		}
	}
	if bad > 10 {
		t.Errorf("... %d differences in all", bad)
	}
}
