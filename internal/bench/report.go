package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a run: every scenario's figures, each next to its limit measured in
// the same run, and the charts drawn from them.
type Report struct {
	// Command is the command line of the run.
	Command string `json:"command"`
	// Quick is true for a -quick run (small counts, a subset).
	Quick bool `json:"quick"`
	// Target says where the scenarios ran: embedded servers or the given NATS URL.
	Target  string    `json:"target"`
	Machine Machine   `json:"machine"`
	Started time.Time `json:"started"`
	// Seconds is the run's duration.
	Seconds   float64          `json:"seconds"`
	Scenarios []ScenarioResult `json:"scenarios"`
	// Charts lists the SVG files written next to the JSON report.
	Charts []string `json:"charts,omitempty"`
}

// ScenarioResult is one scenario's figures and charts.
type ScenarioResult struct {
	Name    string  `json:"name"`
	Title   string  `json:"title"`
	Seconds float64 `json:"seconds"`
	// Skipped, when not empty, says why the scenario (or a part of it, with figures) did not run.
	Skipped string `json:"skipped,omitempty"`
	// Error, when not empty, says why the scenario failed.
	Error   string   `json:"error,omitempty"`
	Figures []Figure `json:"figures"`
	Charts  []Chart  `json:"-"`
}

// Figure is one measured figure next to its limit: the same work done by the layer below
// (raw JetStream for our code, core NATS for JetStream), measured in the same run.
type Figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Limit names the reference, LimitValue is its figure in the same unit.
	Limit      string  `json:"limit"`
	LimitValue float64 `json:"limit_value"`
	// HigherIsBetter is true for rates, false for times and sizes.
	HigherIsBetter bool `json:"higher_is_better"`
	// Ratio is the figure's cost relative to its limit: Value/LimitValue for times and sizes,
	// LimitValue/Value for rates. 1 is the limit itself; 3 means three times the limit's cost.
	Ratio float64 `json:"ratio"`
	// Latency and LimitLatency are the distributions behind a time figure (microseconds).
	Latency      *Latency `json:"latency,omitempty"`
	LimitLatency *Latency `json:"limit_latency,omitempty"`
	Note         string   `json:"note,omitempty"`
}

// Latency is a distribution of operation times in microseconds.
type Latency struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_us"`
	P90  float64 `json:"p90_us"`
	P99  float64 `json:"p99_us"`
	Mean float64 `json:"mean_us"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs       int     `json:"cpus"`
	CPUModel   string  `json:"cpu_model"`
	MemoryMB   int     `json:"memory_mb"`
	GoVersion  string  `json:"go_version"`
	NATSServer string  `json:"nats_server"`
	LoadBefore float64 `json:"load_avg_1m_before"`
	LoadAfter  float64 `json:"load_avg_1m_after"`
}

func ratio(value, limit float64, higherIsBetter bool) float64 {
	if value <= 0 || limit <= 0 {
		return 0
	}
	if higherIsBetter {
		return limit / value
	}
	return value / limit
}

// newFigure builds a figure with its ratio.
func newFigure(name string, value float64, unit, limit string, limitValue float64, higherIsBetter bool) Figure {
	return Figure{Name: name, Value: value, Unit: unit, Limit: limit, LimitValue: limitValue,
		HigherIsBetter: higherIsBetter, Ratio: ratio(value, limitValue, higherIsBetter)}
}

// latencyFigure compares the medians of two samples, in microseconds.
func latencyFigure(name string, s *sample, limit string, l *sample) Figure {
	a, b := s.latency(), l.latency()
	f := newFigure(name, a.P50, "µs p50", limit, b.P50, false)
	f.Latency, f.LimitLatency = a, b
	return f
}

// rateFigure compares two rates in operations (or events) per second.
func rateFigure(name string, value float64, unit, limit string, limitValue float64) Figure {
	return newFigure(name, value, unit, limit, limitValue, true)
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable prints the final table: scenario, figure, limit, ratio.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tFIGURE\tVALUE\tLIMIT\tLIMIT VALUE\tRATIO")
	for _, s := range r.Scenarios {
		if s.Error != "" {
			fmt.Fprintf(tw, "%s\tFAILED: %s\t\t\t\t\n", s.Name, s.Error)
		}
		if len(s.Figures) == 0 && s.Skipped != "" {
			fmt.Fprintf(tw, "%s\tskipped: %s\t\t\t\t\n", s.Name, s.Skipped)
			continue
		}
		for _, f := range s.Figures {
			fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s\t%s %s\t%.2f\n", s.Name, f.Name, num(f.Value), f.Unit, f.Limit, num(f.LimitValue), f.Unit, f.Ratio)
		}
		if s.Skipped != "" {
			fmt.Fprintf(tw, "%s\t(partly skipped: %s)\t\t\t\t\n", s.Name, s.Skipped)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "RATIO is the figure's cost relative to its limit (time or bytes: value/limit; rate: limit/value); 1.00 = at the limit.")
	return err
}

// WriteMarkdown prints the table as Markdown, for BENCHMARKS.md.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| scenario | figure | value | limit | limit value | ratio |\n|---|---|---:|---|---:|---:|\n")
	for _, s := range r.Scenarios {
		if s.Error != "" {
			fmt.Fprintf(&b, "| %s | FAILED: %s | | | | |\n", s.Name, s.Error)
		}
		if len(s.Figures) == 0 && s.Skipped != "" {
			fmt.Fprintf(&b, "| %s | skipped: %s | | | | |\n", s.Name, s.Skipped)
			continue
		}
		for _, f := range s.Figures {
			fmt.Fprintf(&b, "| %s | %s | %s %s | %s | %s %s | %.2f |\n", s.Name, f.Name, num(f.Value), f.Unit, f.Limit, num(f.LimitValue), f.Unit, f.Ratio)
		}
		if s.Skipped != "" {
			fmt.Fprintf(&b, "| %s | partly skipped: %s | | | | |\n", s.Name, s.Skipped)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// num prints a figure with three significant digits, without exponent for usual magnitudes.
func num(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// write stores the JSON report and the charts in dir.
func (r *Report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	r.Charts = nil
	for _, s := range r.Scenarios {
		for _, c := range s.Charts {
			if err := os.WriteFile(filepath.Join(dir, c.File), []byte(c.SVG()), 0o644); err != nil {
				return err
			}
			r.Charts = append(r.Charts, c.File)
		}
	}
	f, err := os.Create(filepath.Join(dir, "report.json"))
	if err != nil {
		return err
	}
	if err := r.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	md, err := os.Create(filepath.Join(dir, "table.md"))
	if err != nil {
		return err
	}
	if err := r.WriteMarkdown(md); err != nil {
		md.Close()
		return err
	}
	return md.Close()
}
