package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/inventory"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// ExitRowsFailed is import's exit code when the file was read to its end but some rows failed.
const ExitRowsFailed = 6

// Kinds of the failed rows in import's report, beside the service's kinds of a refused command.
const (
	KindInvalidRow  = "invalid_row"  // 400: the row cannot be read or a value is invalid
	KindRowConflict = "row_conflict" // 409: the resource exists in a state the row cannot bring it to
)

// progressInterval is how often import prints a progress line when stderr is not a terminal.
const progressInterval = 5 * time.Second

// importRequest is the import subcommand's request.
type importRequest struct {
	file, format, report string
	jobs                 int
	dryRun               bool
}

func importSpec() spec {
	return spec{name: "import", summary: "load a CSV or JSON lines inventory file, one resource per row (\"-\" for stdin); see docs/inventory.md",
		operand: "FILE", subject: api.CommandPrefix + ".*", outputs: []string{OutputText, OutputJSON},
		define: func(fs *flag.FlagSet) func() (any, error) {
			var r importRequest
			fs.StringVar(&r.format, "format", "", "csv or jsonl (default: from the file's extension, .csv, .jsonl or .ndjson)")
			fs.IntVar(&r.jobs, "j", inventory.DefaultConcurrency, "rows imported at once")
			fs.StringVar(&r.report, "report", "", "write each failed row to this file as a line of JSON")
			fs.BoolVar(&r.dryRun, "dry-run", false, "read, check and plan every row against the registry's state, and send no command")
			return func() (any, error) {
				r.file = fs.Arg(0)
				if r.file == "" {
					return nil, usageErrorf("import needs a FILE (\"-\" for stdin)")
				}
				if r.jobs <= 0 {
					return nil, usageErrorf("-j %d is not positive", r.jobs)
				}
				if r.format == "" {
					f, ok := inventory.FormatOf(r.file)
					if !ok {
						return nil, usageErrorf("the format of %q is not known from its name: give -format csv or -format jsonl", r.file)
					}
					r.format = f
				}
				if r.format != inventory.FormatCSV && r.format != inventory.FormatJSONL {
					return nil, usageErrorf("-format %q: want csv or jsonl", r.format)
				}
				return r, nil
			}
		}}
}

// rowsFailedError ends an import whose file was read to its end with failed rows.
type rowsFailedError struct{ failed, rows int }

func (e *rowsFailedError) Error() string {
	return fmt.Sprintf("%d of %d rows failed", e.failed, e.rows)
}

// failedRow is one line of the -report file and of the report on stderr.
type failedRow struct {
	Line int `json:"line"`
	// Column is the column (JSON field) at fault in a row refused before any command was sent.
	Column   string `json:"column,omitempty"`
	ID       string `json:"id,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	// Command is the command that failed ("get" for the read of the state), empty when the row
	// was refused before any was sent.
	Command string     `json:"command,omitempty"`
	Error   *api.Error `json:"error"`
}

func newFailedRow(r inventory.RowResult) failedRow {
	f := failedRow{Line: r.Line, ID: r.ResourceID, Hostname: r.Hostname}
	var rowErr *inventory.RowError
	var stepErr *inventory.StepError
	switch {
	case errors.As(r.Err, &rowErr) && errors.Is(r.Err, inventory.ErrConflict):
		f.Column = rowErr.Column
		f.Error = &api.Error{Code: api.CodeConflict, Kind: KindRowConflict, Message: rowErr.Err.Error()}
	case errors.As(r.Err, &rowErr):
		f.Column = rowErr.Column
		f.Error = &api.Error{Code: api.CodeInvalid, Kind: KindInvalidRow, Message: rowErr.Err.Error()}
	case errors.As(r.Err, &stepErr):
		f.Command = stepErr.Command
		f.Error = errorBody(stepErr.Err)
	default:
		f.Error = errorBody(r.Err)
	}
	return f
}

func (f failedRow) String() string {
	s := fmt.Sprintf("line %d", f.Line)
	if f.Column != "" {
		s += ", column " + f.Column
	}
	if f.Hostname != "" {
		s += " (" + f.Hostname + ")"
	}
	if f.Command != "" {
		s += ": " + f.Command
	}
	return s + ": " + f.Error.Error()
}

// importSummary is import's output on stdout.
type importSummary struct {
	Rows       int     `json:"rows"`
	Failed     int     `json:"failed"`
	Written    int     `json:"commands_written"`
	Duplicates int     `json:"commands_duplicate"`
	Events     int     `json:"events"`
	Planned    int     `json:"commands_planned,omitempty"`
	DryRun     bool    `json:"dry_run,omitempty"`
	Seconds    float64 `json:"seconds"`
}

// runImport imports a file: progress on stderr, the failed rows on stderr (and -report), the
// summary on stdout.
func (c *CLI) runImport(ctx context.Context, client *api.Client, inv *invocation, req importRequest) error {
	var src io.Reader = c.Stdin
	size := int64(-1)
	if req.file != "-" {
		f, err := os.Open(req.file)
		if err != nil {
			return usageErrorf("%v", err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			size = st.Size()
		}
		src = f
	}
	if src == nil {
		return usageErrorf("no standard input to read")
	}
	counted := &countingReader{r: src}
	rows, err := inventory.NewReader(counted, req.format)
	if err != nil {
		return usageErrorf("%s: %v", req.file, err)
	}
	var report *json.Encoder
	if req.report != "" {
		f, err := os.Create(req.report)
		if err != nil {
			return usageErrorf("-report: %v", err)
		}
		defer f.Close()
		report = json.NewEncoder(f)
		report.SetEscapeHTML(false)
	}

	start := time.Now()
	progress := c.startProgress(size, counted)
	var failures []failedRow
	var sum importSummary
	var reportErr error
	s, importErr := inventory.Import(ctx, client, rows, inventory.Options{Concurrency: req.jobs, DryRun: req.dryRun,
		OnRow: func(r inventory.RowResult) {
			if req.dryRun {
				sum.Planned += len(r.Steps)
			}
			progress.row(r.Err != nil)
			if r.Err == nil {
				return
			}
			f := newFailedRow(r)
			failures = append(failures, f)
			if report != nil && reportErr == nil {
				reportErr = report.Encode(f)
			}
		}})
	progress.stop()
	sum.Rows, sum.Failed, sum.Written, sum.Duplicates, sum.Events = s.Rows, s.Failed, s.Written, s.Duplicates, s.Events
	sum.DryRun, sum.Seconds = req.dryRun, time.Since(start).Seconds()

	slices.SortFunc(failures, func(a, b failedRow) int { return a.Line - b.Line })
	for _, f := range failures {
		fmt.Fprintf(c.Stderr, "%s import: %s\n", Name, f)
	}
	if inv.output == OutputJSON {
		if err := writeJSON(c.Stdout, sum); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(c.Stdout, "rows %d, failed %d, commands written %d, duplicates %d, events %d", sum.Rows, sum.Failed,
			sum.Written, sum.Duplicates, sum.Events)
		if req.dryRun {
			fmt.Fprintf(c.Stdout, ", planned %d (dry run: nothing sent)", sum.Planned)
		}
		fmt.Fprintf(c.Stdout, ", %.1f s\n", sum.Seconds)
	}
	switch {
	case importErr != nil:
		return importErr
	case reportErr != nil:
		return fmt.Errorf("-report: %w", reportErr)
	case sum.Failed > 0:
		return &rowsFailedError{failed: sum.Failed, rows: sum.Rows}
	}
	return nil
}

// countingReader counts the bytes read, for the progress bar of a file.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// progress shows an import's progress on stderr: a bar on a terminal, else a line every
// progressInterval and one at the end.
type progress struct {
	bar          *progressbar.ProgressBar
	read         *countingReader
	rows, failed atomic.Int64
	start        time.Time
	w            io.Writer
	done         chan struct{}
	wg           sync.WaitGroup
}

func (c *CLI) startProgress(size int64, read *countingReader) *progress {
	p := &progress{read: read, start: time.Now(), w: c.Stderr, done: make(chan struct{})}
	if f, ok := c.Stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions64(size, progressbar.OptionSetWriter(c.Stderr), progressbar.OptionShowBytes(true),
			progressbar.OptionSetDescription("importing"), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish())
		return p
	}
	p.wg.Go(func() {
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
				p.line()
			}
		}
	})
	return p
}

func (p *progress) row(failed bool) {
	p.rows.Add(1)
	if failed {
		p.failed.Add(1)
	}
	if p.bar != nil {
		_ = p.bar.Set64(p.read.n.Load())
	}
}

func (p *progress) line() {
	rows, elapsed := p.rows.Load(), time.Since(p.start)
	fmt.Fprintf(p.w, "%s import: %d rows (%d failed), %.0f rows/s, %s\n", Name, rows, p.failed.Load(),
		float64(rows)/elapsed.Seconds(), elapsed.Round(time.Second))
}

func (p *progress) stop() {
	if p.bar != nil {
		_ = p.bar.Finish()
		return
	}
	close(p.done)
	p.wg.Wait()
	p.line()
}
