package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// TestDocumentedBuildLeavesNoUntrackedFile: every `go build -o FILE` the docs tell a reader to
// run from the repository's root writes a file that git ignores, so following the README leaves
// `git status` clean.
func TestDocumentedBuildLeavesNoUntrackedFile(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("git", "-C", root, "rev-parse", "--is-inside-work-tree").CombinedOutput(); err != nil {
		t.Skipf("not a git work tree (%v: %s): nothing to check", err, out)
	}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	docs = append(docs, filepath.Join(root, "README.md"))
	build := regexp.MustCompile(`(?m)^\s+go build -o (\S+) \./cmd/`)
	found := 0
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range build.FindAllSubmatch(b, -1) {
			out := string(m[1])
			if filepath.IsAbs(out) {
				continue
			}
			found++
			// check-ignore exits 0 when the path is ignored, 1 when it is not.
			if err := exec.Command("git", "-C", root, "check-ignore", "-q", out).Run(); err != nil {
				t.Errorf("%s: `go build -o %s` leaves an untracked file: git check-ignore %s: %v", filepath.Base(doc), out, out, err)
			}
		}
	}
	if found == 0 {
		t.Fatal("no `go build -o` step found in README.md or docs/*.md: the pattern no longer matches them")
	}
}
