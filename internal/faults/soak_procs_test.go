package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/freeport"
)

// soakProc is one soak child: a part of the system in its own process.
type soakProc struct {
	name    string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	reports *os.File
	lines   *bufio.Reader
	ops     string // host:port of its operations server (services only)
	exited  chan error
}

// startSoakProc starts this test binary as the child running part with args; its standard
// output and error go to logPath.
func startSoakProc(t *testing.T, name, part, logPath string, args ...string) *soakProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), envSoakChild+"="+part)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.ExtraFiles = []*os.File{w}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	w.Close()
	p := &soakProc{name: name, cmd: cmd, stdin: stdin, reports: r, lines: bufio.NewReader(r), exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// startSoakService starts a service child with an operations server on a free port and waits
// until its /readyz says ready.
func startSoakService(t *testing.T, name, part, dir string, args ...string) *soakProc {
	t.Helper()
	port, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args = append([]string{"-http-addr", addr, "-log-level", "warn"}, args...)
	p := startSoakProc(t, name, part, filepath.Join(dir, name+".log"), args...)
	p.ops = addr
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case err := <-p.exited:
			t.Fatalf("%s exited before it was ready (%v); its log: %s", name, err, filepath.Join(dir, name+".log"))
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 2m; its log: %s", name, filepath.Join(dir, name+".log"))
		}
	}
}

// report reads the child's next report line, waiting up to a minute.
func (p *soakProc) report() (childReport, error) {
	var r childReport
	_ = p.reports.SetReadDeadline(time.Now().Add(time.Minute))
	line, err := p.lines.ReadBytes('\n')
	if err != nil {
		return r, fmt.Errorf("%s: read its report: %w", p.name, err)
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return r, fmt.Errorf("%s: report %q: %w", p.name, line, err)
	}
	if r.Err != "" {
		return r, fmt.Errorf("%s: %s", p.name, r.Err)
	}
	return r, nil
}

// sample asks the child for its heap in use (after a collection), goroutines and descriptors.
func (p *soakProc) sample() (childReport, error) {
	if _, err := io.WriteString(p.stdin, "sample\n"); err != nil {
		return childReport{}, fmt.Errorf("%s: %w", p.name, err)
	}
	return p.report()
}

// profile makes the child write its heap profile to path.
func (p *soakProc) profile(path string) error {
	if _, err := fmt.Fprintf(p.stdin, "profile %s\n", path); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	_, err := p.report()
	return err
}

// metric reads the largest value of a metric on the service's /metrics (NaN-free; 0 if absent).
func (p *soakProc) metric(ctx context.Context, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.ops+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var best float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != ' ' && line[len(name)] != '{') {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err == nil && v > best {
			best = v
		}
	}
	return best, sc.Err()
}

// stop closes the child's stdin, which stops it gracefully, and waits for it (killing it after
// a minute). A service that did not exit cleanly fails the test.
func (p *soakProc) stop(t *testing.T) {
	if p.cmd == nil {
		return
	}
	cmd := p.cmd
	p.cmd = nil
	_ = p.stdin.Close()
	var err error
	select {
	case err = <-p.exited:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		err = fmt.Errorf("killed after a minute: %w", <-p.exited)
	}
	p.reports.Close()
	if err != nil {
		t.Errorf("%s did not stop cleanly: %v", p.name, err)
	}
}
