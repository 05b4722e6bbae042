package doccheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// section returns the level-2 section of doc whose heading is title, up to the next one.
func section(t *testing.T, doc, title string) string {
	t.Helper()
	start := strings.Index(doc, "\n## "+title+"\n")
	if start < 0 {
		t.Fatalf("no section %q", title)
	}
	rest := doc[start+1:]
	if end := strings.Index(rest[3:], "\n## "); end >= 0 {
		rest = rest[:end+3]
	}
	return rest
}

// TestCommandServiceDocLivesInArchitecture keeps the command service's description in one
// place, docs/architecture.md, with the package comment pointing there, and checks the section
// against the code: every flag it names is one the service registers, every header it names is
// one the code defines.
func TestCommandServiceDocLivesInArchitecture(t *testing.T) {
	pkgDoc := read(t, "internal/commandservice/doc.go")
	if n := strings.Count(pkgDoc, "\n"); n > 20 {
		t.Errorf("internal/commandservice/doc.go has %d lines: the design belongs in docs/architecture.md, the package comment points there", n)
	}
	if !strings.Contains(pkgDoc, "docs/architecture.md") || !strings.Contains(pkgDoc, `"The command service in detail"`) {
		t.Error("internal/commandservice/doc.go does not point to docs/architecture.md, section \"The command service in detail\"")
	}

	doc := section(t, read(t, "docs/architecture.md"), "The command service in detail")

	flags := registeredFlags(t, "internal/commandservice/config.go")
	named := regexp.MustCompile("`-([a-z][a-z-]+)(=[^`]*)?`").FindAllStringSubmatch(doc, -1)
	if len(named) < 8 {
		t.Fatalf("the section names %d flags, want the service's settings it describes", len(named))
	}
	for _, m := range named {
		if !flags[m[1]] {
			t.Errorf("docs/architecture.md names the flag -%s, which the command service does not register", m[1])
		}
	}

	var code strings.Builder
	for _, dir := range []string{"pkg/api", "internal/commandservice", "pkg/jetstore"} {
		files, _ := filepath.Glob(filepath.Join(root, dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			code.Write(src)
		}
	}
	for _, h := range regexp.MustCompile("`(Cim-[A-Za-z-]+|Command-Digest)`").FindAllStringSubmatch(doc, -1) {
		if !strings.Contains(code.String(), `"`+h[1]+`"`) {
			t.Errorf("docs/architecture.md names the header %s, which the code does not define", h[1])
		}
	}
	for _, promise := range []string{"`Cim-Deadline`", "`Cim-New-Command-Id`", "`-max-clock-skew`", "`-results-bucket`", "`command_id_reused`", "internal/microsvc"} {
		if !strings.Contains(doc, promise) {
			t.Errorf("the section does not describe %s", promise)
		}
	}
}

// registeredFlags returns the names of the flags RegisterFlags defines in the file.
func registeredFlags(t *testing.T, name string) map[string]bool {
	t.Helper()
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`fs\.(?:\w+Var|Var)\([^,]+, "([a-z-]+)"`).FindAllStringSubmatch(read(t, name), -1) {
		flags[m[1]] = true
	}
	if len(flags) == 0 {
		t.Fatalf("no flags found in %s", name)
	}
	return flags
}
