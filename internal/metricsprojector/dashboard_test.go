package metricsprojector

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
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

var (
	promStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers  = regexp.MustCompile(`\{[^}]*\}`)
	promRanges    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promVariables = regexp.MustCompile(`\$\{?\w+\}?`)
	promNumbers   = regexp.MustCompile(`\b\d[\w.]*`) // numbers and durations (1h, 1e3)
	promIdent     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	promKeywords  = []string{"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan"}
)

// metricNames extracts the metric names a PromQL expression selects: identifiers that are not
// calls, keywords, label names in matchers or groupings, or Grafana variables.
func metricNames(expr string) []string {
	for _, re := range []*regexp.Regexp{promStrings, promMatchers, promRanges, promGrouping, promVariables, promNumbers} {
		expr = re.ReplaceAllString(expr, " ")
	}
	var names []string
	for _, m := range promIdent.FindAllStringSubmatch(expr, -1) {
		if m[1] != "" || slices.Contains(promKeywords, strings.ToLower(m[0])) {
			continue // a function or aggregation call, or a keyword
		}
		names = append(names, m[0])
	}
	return names
}

func TestMetricNamesOfAnExpression(t *testing.T) {
	got := metricNames(`sum by (status, to) (rate(foo_total{a="b",c=~"x|y"}[5m] offset 1h)) / on(x) group_left bar:ratio - time() + $__range * 2`)
	want := []string{"foo_total", "bar:ratio"}
	if !slices.Equal(got, want) {
		t.Fatalf("metric names = %v, want %v", got, want)
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
		names := metricNames(expr)
		if len(names) == 0 {
			t.Errorf("expression %q selects no metric", expr)
		}
		for _, n := range names {
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
