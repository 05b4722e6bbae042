package neo4jtest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireTools skips the test, or fails it in CI, when a tool it needs is not on PATH.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err == nil {
			continue
		}
		if decide("", os.Getenv("CI")) == fail {
			t.Fatalf("%s not found and CI is true: tools/neo4j-testserver needs Java 17+ and Maven", tool)
		}
		t.Skipf("%s not found: tools/neo4j-testserver needs Java 17+ and Maven", tool)
	}
}

// alive reports whether process pid runs; a zombie (exited, not yet reaped) does not.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) == 0 || fields[0] != "Z"
}

// TestNeo4jStartStopsWhenItsShellIsKilled starts Neo4j with scripts/neo4j-start in a shell that
// then waits on a child (sleep) holding every descriptor it inherited, kills the shell with
// SIGKILL (no trap runs), and expects the server gone and its run directory removed while the
// child still runs.
func TestNeo4jStartStopsWhenItsShellIsKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Neo4j of its own (a minute or more); not in -short")
	}
	requireTools(t, "java", "mvn")
	root := repoRoot(t)
	script := `source scripts/neo4j-start || exit 1
echo "started $BASHPID $__NEO4J_PID $__NEO4J_RUN"
sleep 600 </dev/null >/dev/null 2>&1 &
echo "child $!"
wait
`
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = root
	cmd.Env = append(withoutNeo4jOrCI(os.Environ()), "NEO4J_JAVA_OPTS=-Xmx512m")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Whatever happens below, nothing of this test outlives it.
	var javaPID, childPID int
	var runDir string
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		for _, pid := range []int{childPID, javaPID} {
			if pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if runDir != "" {
			_ = os.RemoveAll(runDir)
		}
	})
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	startDeadline := time.After(6 * time.Minute) // beyond neo4j-start's own wait for Bolt (300 s)
	var shellPID int
	for childPID == 0 {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the shell ended before starting its child; stderr:\n%s", stderr.String())
			}
			if f := strings.Fields(line); len(f) == 4 && f[0] == "started" {
				shellPID, _ = strconv.Atoi(f[1])
				javaPID, _ = strconv.Atoi(f[2])
				runDir = f[3]
			} else if len(f) == 2 && f[0] == "child" {
				childPID, _ = strconv.Atoi(f[1])
			}
		case <-startDeadline:
			t.Fatalf("Neo4j did not start; stderr:\n%s", stderr.String())
		}
	}
	if shellPID != cmd.Process.Pid || !alive(javaPID) || !filepath.IsAbs(runDir) {
		t.Fatalf("shell %d (want %d), java %d alive %v, run dir %q", shellPID, cmd.Process.Pid, javaPID, alive(javaPID), runDir)
	}
	if _, err := os.Stat(runDir); err != nil {
		t.Fatalf("run dir: %v", err)
	}

	if err := syscall.Kill(shellPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The shell's stdout ends with it (nothing else holds it), and then Wait may close it.
	drained := time.After(time.Minute)
	for open := true; open; {
		select {
		case _, open = <-lines:
		case <-drained:
			t.Fatal("the shell's stdout is still open a minute after kill -9: something it started holds it")
		}
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, statErr := os.Stat(runDir)
		javaUp, dirLeft := alive(javaPID), statErr == nil
		if !javaUp && !dirLeft {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("2 min after kill -9 of the shell: java running %v, %s left behind %v", javaUp, runDir, dirLeft)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !alive(childPID) {
		t.Errorf("the shell's child %d, which holds the server's stdin open, is gone: the test no longer shows what it means to", childPID)
	}
}
