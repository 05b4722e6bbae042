// Package natstest starts real, embedded NATS JetStream servers for tests: a single node or an
// in-process cluster on loopback, each with its own store directory, so that a node can be shut
// down and restarted on the same store.
package natstest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/retry"
	"github.com/cim-infra/registry/internal/testkit"
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
	t    testing.TB
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
	if n.srv != nil {
		n.t.Fatalf("natstest: restart of running node %s", n.Name())
	}
	if err := n.start(); err != nil {
		n.t.Fatal(err)
	}
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
	var n *Node
	err := retryStart(t, func() error {
		o := baseOptions(t, "single", testkit.FreePort(t))
		for _, f := range opts {
			f(&o)
		}
		n = &Node{t: t, opts: o}
		return n.start()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Shutdown)
	return n
}

// startAttempts bounds the first starts of a server or cluster: ports are chosen free but bound
// only later, and a test process running beside this one can take one in between.
const startAttempts = 3

func retryStart(t testing.TB, start func() error) error {
	t.Helper()
	return retry.Do(context.Background(), retry.Policy{
		Attempts: startAttempts, // at once: start picks new ports
		OnRetry: func(attempt int, err error, _ time.Duration) {
			t.Logf("natstest: start attempt %d of %d: %v; again on new ports", attempt, startAttempts, err)
		},
	}, start)
}

// Cluster is an in-process JetStream cluster on loopback.
type Cluster struct {
	Nodes []*Node
}

// RunCluster starts a JetStream cluster of size nodes and waits until it has a meta leader that
// sees every peer, so that streams can be created at once.
func RunCluster(t testing.TB, size int, opts ...Option) *Cluster {
	t.Helper()
	c := &Cluster{}
	err := retryStart(t, func() error {
		c.Nodes = nil
		clientPorts := make([]int, size)
		routePorts := make([]int, size)
		routes := make([]string, size)
		for i := range size {
			clientPorts[i] = testkit.FreePort(t)
			routePorts[i] = testkit.FreePort(t)
			routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", routePorts[i])
		}
		for i := range size {
			o := baseOptions(t, fmt.Sprintf("n%d", i+1), clientPorts[i])
			o.Cluster = server.ClusterOpts{Name: "natstest", Host: "127.0.0.1", Port: routePorts[i]}
			o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
			for _, f := range opts {
				f(&o)
			}
			c.Nodes = append(c.Nodes, &Node{t: t, opts: o})
		}
		for _, n := range c.Nodes {
			if err := n.start(); err != nil {
				c.shutdown()
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Registered after the nodes' t.TempDir calls, so that it runs before their removal: a
	// running node keeps writing to its store, and the removal then fails the test.
	t.Cleanup(c.shutdown)
	c.WaitReady(t)
	return c
}

func (c *Cluster) shutdown() {
	for _, n := range c.Nodes {
		n.Shutdown()
	}
}

// WaitReady waits until a running node is the JetStream meta leader and sees all peers.
func (c *Cluster) WaitReady(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	testkit.WaitFor(t, ctx, fmt.Sprintf("natstest: a JetStream meta leader that sees all %d peers", len(c.Nodes)), func() bool {
		for _, n := range c.Nodes {
			if n.srv != nil && n.srv.JetStreamIsLeader() && len(n.srv.JetStreamClusterPeers()) == len(c.Nodes) {
				return true
			}
		}
		return false
	})
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

func baseOptions(t testing.TB, name string, port int) server.Options {
	return server.Options{
		ServerName: name,
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		NoLog:      true,
		NoSigs:     true,
	}
}
