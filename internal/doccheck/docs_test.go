package doccheck

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// root is the repository's root, seen from this package's directory.
const root = "../.."

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// withoutSection drops the level-2 section whose heading contains title, up to the next one.
func withoutSection(doc, title string) string {
	var out []string
	skip := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "## ") {
			skip = strings.Contains(line, title)
		}
		if !skip {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// diary matches what a reference doc must not hold: commit hashes and the narrative of how a
// figure or a fix was reached.
var diary = regexp.MustCompile("(?i)(\\b(commits?|run|built from) `?[0-9a-f]{7,40}\\b|\\bthis session\\b|" +
	"\\bsecond helper\\b|\\b(second|third|fourth) session\\b|\\bsince fixed\\b|\\ba later run\\b|\\blater runs\\b|\\bprevious (full )?run\\b)")

func TestReferenceDocsHoldNoDiary(t *testing.T) {
	docs := map[string]func(string) string{
		"BENCHMARKS.md": func(s string) string { return s },
		"README.md":     func(s string) string { return s },
		// The soak section is rewritten on its own; the rest of the file is reference.
		"RELIABILITY.md":       func(s string) string { return withoutSection(s, "Soak") },
		"docs/architecture.md": func(s string) string { return s },
	}
	for name, keep := range docs {
		for i, line := range strings.Split(keep(read(t, name)), "\n") {
			if m := diary.FindString(line); m != "" {
				t.Errorf("%s: line %d holds %q: state what is true now, git keeps the history:\n%s", name, i+1, m, line)
			}
		}
	}
}

// benchCommand matches `go test ... -bench NAME ... ./path/` in a doc, over line breaks.
var benchCommand = regexp.MustCompile(`go test [^\x60]*?-bench '?([^' ]+)'?[^\x60]*?\./([\w/]+?)/?\x60`)

// TestBenchmarkCommandsNameRealBenchmarks runs no benchmark: it checks that every benchmark
// command BENCHMARKS.md and README.md give names a Benchmark function of the package it names,
// so that the command reproduces the figure it stands next to.
func TestBenchmarkCommandsNameRealBenchmarks(t *testing.T) {
	for _, name := range []string{"BENCHMARKS.md", "README.md"} {
		doc := strings.ReplaceAll(read(t, name), "\n", " ")
		matches := benchCommand.FindAllStringSubmatch(doc, -1)
		if name == "BENCHMARKS.md" && len(matches) < 4 {
			t.Fatalf("%s: found %d benchmark commands, want the package benchmarks it documents", name, len(matches))
		}
		for _, m := range matches {
			pattern, pkg := m[1], m[2]
			bench := strings.Trim(strings.Split(pattern, "/")[0], "^$")
			src := benchSources(t, pkg)
			if bench == "." {
				if !strings.Contains(src, "func Benchmark") {
					t.Errorf("%s: %q: ./%s has no benchmark", name, m[0], pkg)
				}
				continue
			}
			if !regexp.MustCompile(`func Benchmark\w*` + regexp.QuoteMeta(strings.TrimPrefix(bench, "Benchmark")) + `\w*\(b \*testing\.B\)`).MatchString(src) {
				t.Errorf("%s: %q: no benchmark matching %q in ./%s", name, m[0], bench, pkg)
			}
		}
	}
}

// benchSources returns the test files of the package at dir, concatenated.
func benchSources(t *testing.T, dir string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, dir, "*_test.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files in ./%s (%v)", dir, err)
	}
	var b strings.Builder
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(src)
	}
	return b.String()
}

// measuredFigure matches a result of a measurement in a comment: a number beside the word
// "measured", a ratio of times, a speed-up, a size per event, a figure quoted from BENCHMARKS.md.
// Settings (timeouts, bounds, defaults) are not results and do not match.
var measuredFigure = regexp.MustCompile(`(?i)(\bmeasured\b.*\b\d|\b\d.*\bmeasured\b|\b\d[\d.]*(-[\d.]+)? times (the|slower|faster)|\b\d[\d.]*x (faster|slower)|\b\d+ B/event|BENCHMARKS\.md: \d)`)

// TestCommentsHoldNoMeasuredFigures walks every Go file of the module: figures go stale in
// comments; they belong in BENCHMARKS.md with the command that reproduces them.
func TestCommentsHoldNoMeasuredFigures(t *testing.T) {
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, group := range f.Comments {
			lines := strings.Split(group.Text(), "\n")
			for i, line := range lines {
				// A figure's words may wrap: look at each line with the next.
				pair := line
				if i+1 < len(lines) {
					pair += " " + lines[i+1]
				}
				if m := measuredFigure.FindString(line); m != "" || (measuredFigure.MatchString(pair) && !measuredFigure.MatchString(lines[i+1])) {
					t.Errorf("%s: comment holds a measured figure (move it to BENCHMARKS.md with its command, say why without it): %s",
						fset.Position(group.Pos()), strings.TrimSpace(pair))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
