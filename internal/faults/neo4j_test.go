package faults

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/neo4jtest"
)

// TestFaultsWithoutNeo4j runs TestFaults in a child process of this test binary with no
// NEO4J_URI: outside CI it skips with the hint to start Neo4j, under CI=true it fails; both at
// once, before starting anything.
func TestFaultsWithoutNeo4j(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ci       string
		wantFail bool
		want     string
	}{
		{ci: "", wantFail: false, want: "--- SKIP: TestFaults "},
		{ci: "true", wantFail: true, want: "--- FAIL: TestFaults "},
	} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Parallel()
			// The bound only ends a child that, wrongly, starts the suite (minutes).
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestFaults$", "-test.v", "-test.count=1", "-test.timeout=5m")
			cmd.Env = append(slices.DeleteFunc(slices.Clone(os.Environ()), func(kv string) bool {
				name, _, _ := strings.Cut(kv, "=")
				return name == neo4jtest.EnvURI || name == "CI"
			}), "CI="+tc.ci)
			cmd.WaitDelay = time.Second
			out, err := cmd.CombinedOutput()
			if failed := err != nil; failed != tc.wantFail {
				t.Fatalf("child failed=%v (%v), want %v; output:\n%s", failed, err, tc.wantFail, out)
			}
			if !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), "source scripts/neo4j-start") {
				t.Fatalf("child output lacks %q or the hint to `source scripts/neo4j-start`:\n%s", tc.want, out)
			}
		})
	}
}
