package metricsprojector

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/promql/parser"
)

const dashboardPath = "../../deploy/grafana/cim-registry.json"

// dashboardExprs returns every PromQL expression of the dashboard, wherever it sits.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if s, ok := c.(string); ok && k == "expr" {
					exprs = append(exprs, s)
				}
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(doc)
	return exprs
}

// grafanaVariables are the Grafana variables the dashboard's expressions may use, with a value
// of the type PromQL expects there, so that the expression parses as Prometheus will receive it.
var grafanaVariables = strings.NewReplacer(
	"$__rate_interval", "1m", "${__rate_interval}", "1m",
	"$__interval", "1m", "${__interval}", "1m",
	"$__range", "1h", "${__range}", "1h",
)

// metricNames returns the metric names an expression selects, parsed by Prometheus's own PromQL
// parser, or the parser's error.
func metricNames(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaVariables.Replace(expr))
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			names = append(names, vs.Name)
		}
		return nil
	})
	return names, nil
}

func TestMetricNamesOfAnExpression(t *testing.T) {
	got, err := metricNames(`sum by (status, to) (rate(foo_total{a="b",c=~"x|y"}[5m] offset 1h)) / on(x) group_left bar:ratio - time() + $__range / {__name__="baz"}`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"foo_total", "bar:ratio", ""}
	if !slices.Equal(got, want) {
		t.Fatalf("metric names = %q, want %q", got, want)
	}
	if _, err := metricNames(`sum by (status (cim_resources)`); err == nil {
		t.Error("an unbalanced expression parses")
	}
}

// TestDashboardQueriesOnlyExportedMetrics scrapes a projector that applied real events and checks
// that every metric the dashboard queries is among those it exports.
func TestDashboardQueriesOnlyExportedMetrics(t *testing.T) {
	exprs := dashboardExprs(t)
	if len(exprs) < 10 {
		t.Fatalf("only %d expressions found in %s", len(exprs), dashboardPath)
	}

	e := newEnv(t, 17, 30)
	e.write(100)
	in := e.start(defaultTestOptions(), nil)
	e.waitReady(in)
	e.waitSeq(in, e.head)
	mfs, err := in.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	in.shutdown(t)
	exported := map[string]bool{}
	for _, mf := range mfs {
		exported[mf.GetName()] = true
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				exported[mf.GetName()+suffix] = true
			}
		}
	}

	used := map[string]bool{}
	for _, expr := range exprs {
		names, err := metricNames(expr)
		if err != nil {
			t.Errorf("expression %q: %v", expr, err)
			continue
		}
		if len(names) == 0 {
			t.Errorf("expression %q selects no metric", expr)
		}
		for _, n := range names {
			if n == "" {
				t.Errorf("expression %q selects by labels only: name the metric", expr)
				continue
			}
			used[n] = true
			if !exported[n] {
				t.Errorf("dashboard queries %s (in %q), which the projector does not export", n, expr)
			}
		}
	}
	// What the issue asks the dashboard to show.
	for _, n := range []string{MetricResources, MetricEvents, MetricTransitions, "cim_projector_lag_events",
		"cim_projector_lag_seconds", "cim_projector_events_applied_total", "cim_projector_dead_letters_total", "cim_projector_up"} {
		if !used[n] {
			t.Errorf("dashboard does not show %s", n)
		}
	}
}
