package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/cim-infra/registry/internal/freeport"
)

// The memory scenario measures the heap of the command service in this process; a server in the
// same process would add its own caches to that heap. So it runs its server in a child process:
// this same executable, started with the variables below, serves NATS until its stdin closes.
const (
	childStoreEnv = "CIMBENCH_CHILD_NATS_STORE"
	childPortEnv  = "CIMBENCH_CHILD_NATS_PORT"
)

// ServeChildIfAsked returns at once, unless this process was started as the benchmark's child
// NATS server: then it serves until its stdin is closed (or its parent dies) and exits. Call it
// first in main, and in TestMain of tests that run the memory scenario.
func ServeChildIfAsked() {
	dir := os.Getenv(childStoreEnv)
	if dir == "" {
		return
	}
	port, err := strconv.Atoi(os.Getenv(childPortEnv))
	if err != nil {
		fmt.Fprintf(os.Stderr, "cimbench child: %s: %v\n", childPortEnv, err)
		os.Exit(2)
	}
	s, err := startServer(serverOptions("child", port, dir, false))
	if err != nil {
		fmt.Fprintf(os.Stderr, "cimbench child: %v\n", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	s.Shutdown()
	s.WaitForShutdown()
	os.Exit(0)
}

// childServer is a NATS server in a child process.
type childServer struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	dir   string
	url   string
}

// startChild starts this executable as a NATS server with its store under base.
func startChild(base string) (*childServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bench: child server: %w", err)
	}
	dir, err := os.MkdirTemp(base, "child-")
	if err != nil {
		return nil, err
	}
	port, err := freeport.Port()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childStoreEnv+"="+dir, childPortEnv+"="+strconv.Itoa(port))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start child server %s: %w", exe, err)
	}
	c := &childServer{cmd: cmd, stdin: stdin, dir: dir, url: fmt.Sprintf("nats://127.0.0.1:%d", port)}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("unexpected first line %q", line)
		}
		ready <- err
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case err := <-ready:
		if err != nil {
			c.stop()
			return nil, fmt.Errorf("bench: child server: %w", err)
		}
	case <-time.After(60 * time.Second):
		c.stop()
		return nil, fmt.Errorf("bench: child server not ready after 60s")
	}
	return c, nil
}

// stop closes the child's stdin (it shuts its server down and exits), kills it if it has not
// exited after 30 s, and removes its store.
func (c *childServer) stop() {
	_ = c.stdin.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
	_ = os.RemoveAll(c.dir)
}
