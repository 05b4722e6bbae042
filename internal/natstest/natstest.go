// Package natstest starts real, embedded NATS JetStream servers for tests: a single node or an
// in-process cluster on loopback, each with its own store directory, so that a node can be shut
// down and restarted on the same store.
package natstest

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/freeport"
	"github.com/cim-infra/registry/internal/retry"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Option adjusts the server options of every node before it starts.
type Option func(*server.Options)

// SyncAlways makes JetStream fsync every write before acknowledging it.
func SyncAlways() Option { return func(o *server.Options) { o.SyncAlways = true } }

// WithOptions applies an arbitrary change to the server options (accounts, users, limits...).
func WithOptions(f func(*server.Options)) Option { return Option(f) }

// Node is one embedded server; it can be shut down and restarted on the same store and ports.
type Node struct {
	t    testing.TB // nil for a node started without a test
	opts server.Options
	srv  *server.Server
}

// Server returns the running server (nil after Shutdown until Restart).
func (n *Node) Server() *server.Server { return n.srv }

// Name returns the node's server name.
func (n *Node) Name() string { return n.opts.ServerName }

// ClientURL returns the node's client URL (stable across restarts).
func (n *Node) ClientURL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.opts.Port) }

// Shutdown stops the node and waits until it is gone.
func (n *Node) Shutdown() {
	if n.srv == nil {
		return
	}
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	n.srv = nil
}

// Running reports whether the node is up.
func (n *Node) Running() bool { return n.srv != nil }

// Restart starts the node again on its own store directory and ports.
func (n *Node) Restart() {
	n.t.Helper()
	if err := n.Start(); err != nil {
		n.t.Fatal(err)
	}
}

// Start starts a node that was shut down again on its own store directory and ports, without
// a test to fail: the error says why it did not become ready.
func (n *Node) Start() error {
	if n.srv != nil {
		return fmt.Errorf("natstest: start of running node %s", n.Name())
	}
	return n.start()
}

// readyTimeout bounds the wait for a starting node's listeners.
var readyTimeout = 20 * time.Second

// start starts the node; the error says why it did not become ready (a port another process
// took between its choice and the server's bind, a slow start).
func (n *Node) start() error {
	opts := n.opts
	s, err := server.NewServer(&opts)
	if err != nil {
		return fmt.Errorf("natstest: new server %s: %w", n.Name(), err)
	}
	errs := &errorLog{}
	s.SetLogger(errs, false, false)
	go s.Start()
	if !s.ReadyForConnections(readyTimeout) {
		s.Shutdown()
		s.WaitForShutdown()
		return fmt.Errorf("natstest: server %s not ready (client port %d, route port %d) after %v; its errors: %s",
			n.Name(), n.opts.Port, n.opts.Cluster.Port, readyTimeout, errs)
	}
	n.srv = s
	return nil
}

// errorLog keeps the last errors a server logged, so that a start that fails can say why (a
// listener that could not bind, for one: the server logs it and keeps waiting). Notices,
// warnings, debug and trace lines are dropped, as with NoLog.
type errorLog struct {
	mu    sync.Mutex
	lines []string
}

const errorLogLines = 10

func (l *errorLog) add(format string, v []any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == errorLogLines {
		l.lines = l.lines[1:]
	}
	l.lines = append(l.lines, fmt.Sprintf(format, v...))
}

func (l *errorLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == 0 {
		return "none"
	}
	return strings.Join(l.lines, "; ")
}

func (l *errorLog) Fatalf(format string, v ...any) { l.add(format, v) }
func (l *errorLog) Errorf(format string, v ...any) { l.add(format, v) }
func (*errorLog) Noticef(string, ...any)           {}
func (*errorLog) Warnf(string, ...any)             {}
func (*errorLog) Debugf(string, ...any)            {}
func (*errorLog) Tracef(string, ...any)            {}

// RunServer starts a single JetStream node on a free loopback port; it is shut down when the test
// ends.
func RunServer(t testing.TB, opts ...Option) *Node {
	t.Helper()
	n, err := startServer(t.TempDir(), t.Logf, opts)
	if err != nil {
		t.Fatal(err)
	}
	n.t = t
	t.Cleanup(n.Shutdown)
	return n
}

// StartServer is RunServer without a test: the node keeps its store under dir, the caller shuts
// it down and removes dir. Restart is then unavailable; Start starts it again.
func StartServer(dir string, opts ...Option) (*Node, error) {
	return startServer(dir, func(string, ...any) {}, opts)
}

func startServer(dir string, logf func(string, ...any), opts []Option) (*Node, error) {
	var n *Node
	err := retryStart(logf, func(attempt int) error {
		o := baseOptions(attemptDir(dir, attempt, ""), "single", 0)
		port, err := freeport.Port()
		if err != nil {
			return fmt.Errorf("natstest: free port: %w", err)
		}
		o.Port = port
		for _, f := range opts {
			f(&o)
		}
		n = &Node{opts: o}
		return n.start()
	})
	return n, err
}

// attemptDir is the store directory of a node in a start attempt: each attempt starts on fresh
// stores, so that nothing a failed attempt wrote (a cluster's peers on other ports) is found.
func attemptDir(dir string, attempt int, node string) string {
	return filepath.Join(dir, fmt.Sprintf("attempt-%d", attempt), node)
}

// startAttempts bounds the first starts of a server or cluster: ports are chosen free but bound
// only later, and a test process running beside this one can take one in between.
const startAttempts = 3

func retryStart(logf func(string, ...any), start func(attempt int) error) error {
	attempt := 0
	return retry.Do(context.Background(), retry.Policy{
		Attempts: startAttempts, // at once: start picks new ports
		OnRetry: func(n int, err error, _ time.Duration) {
			logf("natstest: start attempt %d of %d: %v; again on new ports", n, startAttempts, err)
		},
	}, func() error {
		err := start(attempt)
		attempt++
		return err
	})
}

// Cluster is an in-process JetStream cluster on loopback.
type Cluster struct {
	Nodes []*Node
}

// RunCluster starts a JetStream cluster of size nodes and waits until it has a meta leader that
// sees every peer, so that streams can be created at once.
func RunCluster(t testing.TB, size int, opts ...Option) *Cluster {
	t.Helper()
	c, err := startCluster(t.TempDir(), size, t.Logf, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		n.t = t
	}
	// Registered after t.TempDir, so that it runs before the store's removal: a running node
	// keeps writing to its store, and the removal then fails the test.
	t.Cleanup(c.Shutdown)
	c.WaitReady(t)
	return c
}

// StartCluster is RunCluster without a test: the nodes keep their stores under dir, the caller
// shuts the cluster down (Shutdown) and removes dir. It returns once the cluster is ready, or
// fails after readyTimeout.
func StartCluster(dir string, size int, opts ...Option) (*Cluster, error) {
	c, err := startCluster(dir, size, func(string, ...any) {}, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterReadyTimeout)
	defer cancel()
	if err := c.AwaitReady(ctx); err != nil {
		c.Shutdown()
		return nil, err
	}
	return c, nil
}

func startCluster(dir string, size int, logf func(string, ...any), opts []Option) (*Cluster, error) {
	c := &Cluster{}
	err := retryStart(logf, func(attempt int) error {
		c.Nodes = nil
		clientPorts := make([]int, size)
		routePorts := make([]int, size)
		routes := make([]string, size)
		for i := range size {
			var err error
			if clientPorts[i], err = freeport.Port(); err != nil {
				return fmt.Errorf("natstest: free port: %w", err)
			}
			if routePorts[i], err = freeport.Port(); err != nil {
				return fmt.Errorf("natstest: free port: %w", err)
			}
			routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", routePorts[i])
		}
		for i := range size {
			name := fmt.Sprintf("n%d", i+1)
			o := baseOptions(attemptDir(dir, attempt, name), name, clientPorts[i])
			o.Cluster = server.ClusterOpts{Name: "natstest", Host: "127.0.0.1", Port: routePorts[i]}
			o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
			for _, f := range opts {
				f(&o)
			}
			c.Nodes = append(c.Nodes, &Node{opts: o})
		}
		for _, n := range c.Nodes {
			if err := n.start(); err != nil {
				c.Shutdown()
				return err
			}
		}
		return nil
	})
	return c, err
}

// Shutdown stops every running node.
func (c *Cluster) Shutdown() {
	for _, n := range c.Nodes {
		n.Shutdown()
	}
}

// clusterReadyTimeout bounds the wait for a cluster's meta leader.
const clusterReadyTimeout = 30 * time.Second

// WaitReady waits until a running node is the JetStream meta leader and sees all peers.
func (c *Cluster) WaitReady(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clusterReadyTimeout)
	defer cancel()
	if err := c.AwaitReady(ctx); err != nil {
		t.Fatal(err)
	}
}

// AwaitReady is WaitReady without a test: it returns an error once ctx is done first.
func (c *Cluster) AwaitReady(ctx context.Context) error {
	for {
		for _, n := range c.Nodes {
			if n.srv != nil && n.srv.JetStreamIsLeader() && len(n.srv.JetStreamClusterPeers()) == len(c.Nodes) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("natstest: cluster has no JetStream meta leader with %d peers: %w", len(c.Nodes), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ClientURL returns a comma-separated list of every node's client URL, for nats.Connect.
func (c *Cluster) ClientURL() string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = n.ClientURL()
	}
	return strings.Join(urls, ",")
}

// Node returns the running node with the given server name, or nil.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name() == name {
			return n
		}
	}
	return nil
}

// Connect opens a client connection to url that is closed when the test ends.
func Connect(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("natstest: connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// ConnectInProcess opens a client connection to the running node without a socket
// (nats.InProcessServer), as a service that embeds its server connects; it is closed when the
// test ends.
func ConnectInProcess(t testing.TB, n *Node, opts ...nats.Option) *nats.Conn {
	t.Helper()
	return Connect(t, "", append([]nats.Option{nats.InProcessServer(n.Server())}, opts...)...)
}

func baseOptions(storeDir, name string, port int) server.Options {
	return server.Options{
		ServerName: name,
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   storeDir,
		NoLog:      true,
		NoSigs:     true,
	}
}
