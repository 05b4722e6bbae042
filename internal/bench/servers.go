package bench

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cim-infra/registry/internal/freeport"
	"github.com/nats-io/nats-server/v2/server"
)

// The benchmark runs outside `go test`, so it cannot use internal/natstest (which reports through
// testing.TB). These launchers start the same servers from the same server.Options: JetStream on
// loopback, file storage in a directory of their own, no logs, no signal handling.

// servers is a running set of embedded JetStream servers: one node, or a cluster.
type servers struct {
	nodes []*server.Server
	dirs  []string
}

// URL returns the comma-separated client URLs of every node.
func (s *servers) URL() string {
	urls := make([]string, len(s.nodes))
	for i, n := range s.nodes {
		urls[i] = n.ClientURL()
	}
	return strings.Join(urls, ",")
}

// Shutdown stops every node and removes its store.
func (s *servers) Shutdown() {
	for _, n := range s.nodes {
		n.Shutdown()
	}
	for _, n := range s.nodes {
		n.WaitForShutdown()
	}
	for _, d := range s.dirs {
		_ = os.RemoveAll(d)
	}
}

// serverOptions are natstest's options: a JetStream node on a loopback port.
func serverOptions(name string, port int, storeDir string, syncAlways bool) *server.Options {
	return &server.Options{
		ServerName: name,
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   storeDir,
		SyncAlways: syncAlways,
		NoLog:      true,
		NoSigs:     true,
	}
}

// startServer starts one node and waits until it accepts clients.
func startServer(o *server.Options) (*server.Server, error) {
	s, err := server.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("bench: new server %s: %w", o.ServerName, err)
	}
	go s.Start()
	if !s.ReadyForConnections(20 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("bench: server %s not ready after 20s", o.ServerName)
	}
	return s, nil
}

// startSingle starts one JetStream node with its store under base.
func startSingle(base string, syncAlways bool) (*servers, error) {
	dir, err := os.MkdirTemp(base, "single-")
	if err != nil {
		return nil, err
	}
	port, err := freeport.Port()
	if err != nil {
		return nil, err
	}
	s, err := startServer(serverOptions("single", port, dir, syncAlways))
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return &servers{nodes: []*server.Server{s}, dirs: []string{dir}}, nil
}

// startCluster starts a JetStream cluster of size nodes on loopback and waits until a node is
// the meta leader and sees every peer, so that replicated streams can be created at once.
func startCluster(base string, size int, syncAlways bool) (*servers, error) {
	clientPorts, routePorts := make([]int, size), make([]int, size)
	routes := make([]string, size)
	for i := range size {
		var err error
		if clientPorts[i], err = freeport.Port(); err != nil {
			return nil, err
		}
		if routePorts[i], err = freeport.Port(); err != nil {
			return nil, err
		}
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", routePorts[i])
	}
	c := &servers{}
	for i := range size {
		dir, err := os.MkdirTemp(base, fmt.Sprintf("n%d-", i+1))
		if err != nil {
			c.Shutdown()
			return nil, err
		}
		c.dirs = append(c.dirs, dir)
		o := serverOptions(fmt.Sprintf("n%d", i+1), clientPorts[i], dir, syncAlways)
		o.Cluster = server.ClusterOpts{Name: "cimbench", Host: "127.0.0.1", Port: routePorts[i]}
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		s, err := startServer(o)
		if err != nil {
			c.Shutdown()
			return nil, err
		}
		c.nodes = append(c.nodes, s)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range c.nodes {
			if n.JetStreamIsLeader() && len(n.JetStreamClusterPeers()) == size {
				return c, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.Shutdown()
	return nil, fmt.Errorf("bench: cluster has no JetStream meta leader with %d peers after 60s", size)
}

// baseDir returns a fresh directory for server stores, removed by the returned function.
func baseDir() (string, func(), error) {
	dir, err := os.MkdirTemp("", "cimbench-")
	if err != nil {
		return "", nil, err
	}
	return dir, func() { _ = os.RemoveAll(dir) }, nil
}

// errSkipped marks a scenario (or part) that cannot run in this setting; its text is the reason.
var errSkipped = errors.New("skipped")

func skipf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errSkipped, fmt.Sprintf(format, args...))
}

func natsServerVersion() string { return server.VERSION }
