package promcheck

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

const (
	ruleManifest = "../../deploy/k8s/base/prometheusrule.yaml"
	alertTests   = "testdata/alerts.test.yaml"
	runbookDoc   = "../../deploy/k8s/README.md"
)

// alertRule is a rule of the PrometheusRule, as far as these tests read it.
type alertRule struct {
	Alert string `json:"alert"`
	Expr  string `json:"expr"`
}

// ruleGroups reads the PrometheusRule and returns its groups (the rule-file format Prometheus
// and promtool load) and its alerting rules.
func ruleGroups(t *testing.T) (groups json.RawMessage, alerts []alertRule) {
	t.Helper()
	raw, err := os.ReadFile(ruleManifest)
	if err != nil {
		t.Fatal(err)
	}
	var pr struct {
		Spec struct {
			Groups json.RawMessage `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &pr); err != nil {
		t.Fatalf("%s: %v", ruleManifest, err)
	}
	var gs []struct {
		Rules []alertRule `json:"rules"`
	}
	if err := json.Unmarshal(pr.Spec.Groups, &gs); err != nil {
		t.Fatalf("%s: %v", ruleManifest, err)
	}
	for _, g := range gs {
		for _, r := range g.Rules {
			if r.Alert != "" {
				alerts = append(alerts, r)
			}
		}
	}
	if len(alerts) == 0 {
		t.Fatalf("%s: no alerting rule", ruleManifest)
	}
	return pr.Spec.Groups, alerts
}

// writeRules writes the PrometheusRule's groups as a rule file in dir and returns its path.
func writeRules(t *testing.T, dir string) string {
	t.Helper()
	groups, _ := ruleGroups(t)
	file := filepath.Join(dir, "rules.yaml")
	data, err := json.Marshal(map[string]json.RawMessage{"groups": groups})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestAlertRules checks the PrometheusRule with promtool (check rules: valid rules; test rules:
// testdata/alerts.test.yaml, where every alert fires on the series that should raise it and stays
// silent on a near miss), and that every alert has a test that fires it and a runbook line in
// deploy/k8s/README.md.
func TestAlertRules(t *testing.T) {
	tool(t, "promtool")
	_, alerts := ruleGroups(t)
	dir := t.TempDir()
	rules := writeRules(t, dir)
	if out, err := promtool(t, nil, "check", "rules", rules); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	tests, err := os.ReadFile(alertTests)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts.test.yaml"), tests, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := promtool(t, nil, "test", "rules", filepath.Join(dir, "alerts.test.yaml")); err != nil {
		t.Fatalf("promtool test rules %s: %v\n%s", alertTests, err, out)
	}

	var suite struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string            `json:"alertname"`
				ExpAlerts []json.RawMessage `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(tests, &suite); err != nil {
		t.Fatal(err)
	}
	fired := map[string]bool{}
	for _, tc := range suite.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fired[a.Alertname] = true
			}
		}
	}
	doc, err := os.ReadFile(runbookDoc)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(Cim[A-Za-z]+)` \\| (.+) \\|$").FindAllStringSubmatch(string(doc), -1) {
		rows[m[1]] = m[2]
	}
	var names []string
	for _, a := range alerts {
		names = append(names, a.Alert)
		if !fired[a.Alert] {
			t.Errorf("alert %s: no test in %s expects it to fire", a.Alert, alertTests)
		}
		if strings.TrimSpace(rows[a.Alert]) == "" {
			t.Errorf("alert %s: no runbook row (| `%s` | ... |) in %s", a.Alert, a.Alert, runbookDoc)
		}
	}
	for name := range rows {
		if !slices.Contains(names, name) {
			t.Errorf("%s has a runbook row for %s, which is no alert of %s", runbookDoc, name, ruleManifest)
		}
	}
}

// ruleMetrics returns the metric names the alerts select.
func ruleMetrics(t *testing.T) map[string][]string {
	t.Helper()
	_, alerts := ruleGroups(t)
	used := map[string][]string{}
	for _, a := range alerts {
		e, err := parser.NewParser(parser.Options{}).ParseExpr(a.Expr)
		if err != nil {
			t.Fatalf("alert %s: %v", a.Alert, err)
		}
		parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				used[vs.Name] = append(used[vs.Name], a.Alert)
			}
			return nil
		})
	}
	return used
}
