package neo4jtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot is the repository's root, where scripts/ lives.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// stub writes an executable shell script named name into dir.
func stub(t *testing.T, dir, name, body string) {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!"+bash+"\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// link puts the real tool name into dir.
func link(t *testing.T, dir, name string) {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is needed to run scripts/test in a test: %v", name, err)
	}
	if err := os.Symlink(path, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// TestScriptsTestWithoutJavaOrMaven runs scripts/test with a PATH that holds no java or mvn (or
// no mvn only) and a stub go that records its calls: outside CI every test still runs and the
// output says the Neo4j tests were skipped and why, whatever go test's outcome; under CI=true the
// run fails before testing.
func TestScriptsTestWithoutJavaOrMaven(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	for _, tc := range []struct {
		name     string
		ci       string
		java     bool // a java on PATH (a stub: nothing starts it)
		goTest   int  // go test's exit status
		wantExit int
		want     []string
		wantTest bool // go test ran
	}{
		{name: "no java no mvn", wantExit: 0, wantTest: true, want: []string{
			"== Neo4j: not started, not found: java mvn (tools/neo4j-testserver needs Java 17+ and Maven)",
			"== the tests that need Neo4j were skipped: not found: java mvn"}},
		{name: "no mvn", java: true, wantExit: 0, wantTest: true, want: []string{
			"== the tests that need Neo4j were skipped: not found: mvn ("}},
		{name: "tests fail", goTest: 3, wantExit: 3, wantTest: true, want: []string{
			"== the tests that need Neo4j were skipped: not found: java mvn"}},
		{name: "CI=false", ci: "false", wantExit: 0, wantTest: true, want: []string{
			"== the tests that need Neo4j were skipped"}},
		{name: "CI=true", ci: "true", wantExit: 1, wantTest: false, want: []string{
			"neo4j-start: java not found"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bin := t.TempDir()
			log := filepath.Join(t.TempDir(), "calls")
			for _, tool := range []string{"bash", "dirname", "git", "mkdir"} {
				link(t, bin, tool)
			}
			stub(t, bin, "go", fmt.Sprintf(`echo "go $* NEO4J_URI=${NEO4J_URI:-}" >>%q
case "$1" in
env) echo %q ;;
test) exit %d ;;
esac
`, log, bin, tc.goTest))
			stub(t, bin, "gofmt", "")
			stub(t, bin, "staticcheck", "")
			if tc.java {
				stub(t, bin, "java", "exit 1")
			}
			cmd := exec.CommandContext(t.Context(), filepath.Join(root, "scripts", "test"))
			cmd.Env = append(withoutNeo4jOrCI(os.Environ()), "PATH="+bin, "CI="+tc.ci)
			out, err := cmd.CombinedOutput()
			exit := 0
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				exit = exitErr.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if exit != tc.wantExit {
				t.Errorf("exit status %d, want %d", exit, tc.wantExit)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q", w)
				}
			}
			calls, _ := os.ReadFile(log)
			ran := strings.Contains(string(calls), "go test -race -count=1 -timeout 40m ./... NEO4J_URI=\n")
			if ran != tc.wantTest {
				t.Errorf("go test ran: %v, want %v", ran, tc.wantTest)
			}
			if t.Failed() {
				t.Logf("output:\n%s\ngo calls:\n%s", out, calls)
			}
		})
	}
}
