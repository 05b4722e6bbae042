package promcheck

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

const dashboardPath = "../../deploy/grafana/cim-registry.json"

// grafanaVariables replaces the Grafana variables the dashboard may use by what Grafana sends.
var grafanaVariables = strings.NewReplacer(
	"$__rate_interval", "1m", "${__rate_interval}", "1m",
	"$__interval", "1m", "${__interval}", "1m",
	"$__range", "1h", "${__range}", "1h",
)

// panelExprs returns every PromQL expression of the dashboard with the title of its panel.
func panelExprs(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
			Panels []json.RawMessage `json:"panels"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	exprs := map[string]string{}
	for _, p := range doc.Panels {
		if len(p.Panels) > 0 {
			t.Fatalf("%s: panel %q nests panels (a collapsed row): read them too", dashboardPath, p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Expr != "" {
				exprs[tg.Expr] = p.Title
			}
		}
	}
	return exprs
}

// TestPrometheus runs the services, a short workload and a real Prometheus scraping them and
// evaluating the alert rules, then holds the dashboard, the rules and each service's /metrics to
// it.
func TestPrometheus(t *testing.T) {
	tool(t, "prometheus")
	tool(t, "promtool")
	exprs := panelExprs(t)
	if len(exprs) < 10 {
		t.Fatalf("only %d expressions in %s", len(exprs), dashboardPath)
	}
	reg := startRegistry(t)
	prom := startPrometheus(t, reg.targets, writeRules(t, t.TempDir()))
	if n := reg.send(t, 1, 40, 400); n < 300 {
		t.Fatalf("%d commands answered of 400", n)
	}

	t.Run("queries can fail", func(t *testing.T) {
		// The checks below rely on these answers: an error for an expression Prometheus
		// refuses, no series for a metric nobody exports.
		if _, err := prom.query(t.Context(), "sum(cim_resources"); err == nil {
			t.Error("an unbalanced expression evaluates without error")
		}
		if s, err := prom.query(t.Context(), "cim_no_such_metric"); err != nil || len(s) != 0 {
			t.Errorf("a metric nobody exports: %d series, %v", len(s), err)
		}
		if out, err := promtool(t, []byte("# HELP cim_things Things.\n# TYPE cim_things counter\ncim_things 1\n"), "check", "metrics"); err == nil && strings.TrimSpace(out) == "" {
			t.Error("promtool check metrics finds nothing in a counter without _total")
		}
	})

	t.Run("dashboard", func(t *testing.T) {
		// Each expression must evaluate without error and, once the scrapes have seen the
		// workload, return series.
		for expr, title := range exprs {
			q := grafanaVariables.Replace(expr)
			deadline := time.Now().Add(time.Minute)
			for {
				series, err := prom.query(t.Context(), q)
				if err != nil {
					t.Errorf("panel %q: %s: %v", title, expr, err)
					break
				}
				if len(series) > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("panel %q: %s returns no series a minute after the workload", title, expr)
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
		}
	})

	t.Run("alert rules", func(t *testing.T) {
		// Every rule evaluates without error on what the services export...
		deadline := time.Now().Add(time.Minute)
		for {
			var data struct {
				Groups []struct {
					Rules []struct {
						Name      string `json:"name"`
						Health    string `json:"health"`
						LastError string `json:"lastError"`
					} `json:"rules"`
				} `json:"groups"`
			}
			if err := prom.get(t.Context(), "/api/v1/rules", nil, &data); err != nil {
				t.Fatal(err)
			}
			pending, n := 0, 0
			for _, g := range data.Groups {
				for _, r := range g.Rules {
					n++
					switch r.Health {
					case "ok":
					case "unknown":
						pending++
					default:
						t.Errorf("rule %s: health %s: %s", r.Name, r.Health, r.LastError)
					}
				}
			}
			if n == 0 {
				t.Fatal("Prometheus loaded no rule")
			}
			if pending == 0 || t.Failed() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d rules not evaluated within a minute", pending)
			}
			time.Sleep(500 * time.Millisecond)
		}
		// ...and selects metrics they export (kube_* come from kube-state-metrics).
		series, err := prom.query(t.Context(), `count by (__name__) ({__name__=~"cim_.+"})`)
		if err != nil {
			t.Fatal(err)
		}
		exported := map[string]bool{}
		for _, s := range series {
			exported[s.Metric["__name__"]] = true
		}
		for name, alerts := range ruleMetrics(t) {
			if !strings.HasPrefix(name, "kube_") && !exported[name] {
				t.Errorf("alerts %v select %s, which no running service exports", alerts, name)
			}
		}
	})

	t.Run("promtool check metrics", func(t *testing.T) {
		for _, tg := range reg.targets {
			out, err := promtool(t, metricsOf(t, tg), "check", "metrics")
			if err != nil || strings.TrimSpace(out) != "" {
				t.Errorf("%s: promtool check metrics: %v\n%s", tg.job, err, out)
			}
		}
	})
}
