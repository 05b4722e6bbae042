package bench

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestMain(m *testing.M) {
	ServeChildIfAsked() // the memory scenario runs its NATS server as this test binary
	os.Exit(m.Run())
}

// tiny are counts small enough for a test: every scenario and every code path (a cluster, the
// child server, every concurrency path), no meaningful figure.
var tiny = sizes{
	reps: 20, budget: time.Second, loadReps: 4, asyncMsgs: 2000, asyncWindow: 512, rounds: 1,
	cmdAggregates: []int{300}, concurrency: []int{1, 8}, cmdOpsMin: 24, cmdOpsPerConn: 2,
	growthSizes: []int{1000, 3000}, growthReps: 3,
	replayEvents: 2000,
	replicaKinds: []replication{r1, r3}, replicaConcurrency: []int{4}, replicaAggregates: 300,
	cacheSizes: []int{100, 400},
}

// TestRunWritesCompleteReport runs every scenario end to end with tiny counts on embedded
// servers and checks the report: every scenario ran without error and has figures whose values,
// limits and ratios are positive; the JSON decodes; every chart is a well-formed SVG document.
func TestRunWritesCompleteReport(t *testing.T) {
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sz := tiny
	cfg := Config{Out: out, Progress: io.Discard, sizes: &sz}
	if testing.Verbose() {
		cfg.Progress = os.Stderr
	}
	rep, err := Run(ctx, cfg, zerolog.Nop())
	if err != nil {
		t.Fatalf("run: %v", err)
	}

	data, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("report.json: %v", err)
	}
	var names []string
	for _, s := range got.Scenarios {
		names = append(names, s.Name)
		if s.Error != "" {
			t.Errorf("scenario %s failed: %s", s.Name, s.Error)
		}
		if len(s.Figures) == 0 {
			t.Errorf("scenario %s has no figures (skipped: %q)", s.Name, s.Skipped)
		}
		for _, f := range s.Figures {
			if !(f.Value > 0 && f.LimitValue > 0 && f.Ratio > 0) || f.Limit == "" || f.Unit == "" {
				t.Errorf("scenario %s: figure %q: value %v %s, limit %q %v, ratio %v: want all positive and named",
					s.Name, f.Name, f.Value, f.Unit, f.Limit, f.LimitValue, f.Ratio)
			}
		}
	}
	if !slices.Equal(names, ScenarioNames()) {
		t.Errorf("report has scenarios %v, want %v", names, ScenarioNames())
	}
	if len(got.Charts) != len(rep.Charts) || len(got.Charts) < len(ScenarioNames()) {
		t.Errorf("report lists charts %v, want at least one per scenario", got.Charts)
	}
	for _, c := range got.Charts {
		checkSVG(t, filepath.Join(out, c))
	}

	var table strings.Builder
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, s := range ScenarioNames() {
		if !strings.Contains(table.String(), s) {
			t.Errorf("table lacks scenario %s:\n%s", s, table.String())
		}
	}
}

// checkSVG parses the file as XML to its end and checks that the root element is an svg.
func checkSVG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	var root string
	elements := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: not well-formed XML: %v", path, err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			elements++
		}
	}
	if root != "svg" || elements < 10 {
		t.Errorf("%s: root element %q with %d elements, want an svg with content", path, root, elements)
	}
}

func TestSelectScenarios(t *testing.T) {
	got, err := selectScenarios(" store, limits ")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].name != "limits" || got[1].name != "store" {
		t.Errorf("selected %v, want limits and store in run order", got)
	}
	if _, err := selectScenarios("limits,nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown scenario: error %v, want one naming it", err)
	}
}

func TestRatioOrientation(t *testing.T) {
	if r := newFigure("t", 300, "µs", "l", 100, false).Ratio; r != 3 {
		t.Errorf("time 300 against 100: ratio %v, want 3", r)
	}
	if r := newFigure("r", 100, "ops/s", "l", 300, true).Ratio; r != 3 {
		t.Errorf("rate 100 against 300: ratio %v, want 3", r)
	}
}

func TestSpreadPlanKeepsOutOfBlocks(t *testing.T) {
	sizes := []int{1000, 10_000}
	plan := spreadPlan(sizes)
	count := map[int]int{}
	for p, k := range plan {
		count[k]++
		if p >= sizes[k]-growthEvents {
			t.Errorf("event of the aggregate of size %d at position %d: not before its contiguous block", sizes[k], p)
		}
		for _, s := range sizes {
			if p >= s-growthEvents && p < s {
				t.Errorf("position %d inside the contiguous block before %d", p, s)
			}
		}
	}
	for k := range sizes {
		if count[k] != growthEvents {
			t.Errorf("aggregate of size %d has %d events, want %d", sizes[k], count[k], growthEvents)
		}
	}
}
