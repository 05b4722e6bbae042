// Package registrytest runs the whole registry inside a Go test, the way net/http/httptest runs
// an HTTP server: an embedded nats-server with JetStream (a temporary store, free loopback
// ports), the command service and the query service, and optionally the metrics projector, all
// in the test's process. A test sends commands and queries through the ready *api.Client (or
// any NATS client, the nats CLI included, at URL) and checks what the registry did through the
// client, the event store or the metrics.
//
//	func TestMyTool(t *testing.T) {
//		t.Parallel()
//		reg := registrytest.New(t)
//		reply, err := reg.Client().Register(t.Context(), api.Register{Hostname: "web-01.example.com", ResourceType: "vm"})
//		...
//	}
//
// The services run with their default settings, except snapshots (of the command service's
// evicted aggregates, of the query service's model), which a registry that lives for one test
// has no use for. Every registry has its own server, ports and directory, so tests run in
// parallel and under -race. Every wait has a deadline: a registry that does not come up fails
// the test with the reason, it never hangs it.
//
// To test how a tool copes with an unavailable registry, StopServer and RestartServer stop
// and start the NATS server (on the same store and port), and PauseServices freezes the
// services as a stopped process would: requests reach the server but get no reply until
// ResumeServices, so the tool's time-outs and retries run as they would in production.
package registrytest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/internal/tcpproxy"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultStartTimeout bounds New's start of a registry (the test's own deadline, if earlier,
// bounds it too) and Close's stop.
const DefaultStartTimeout = 60 * time.Second

// ClusterSize is the number of nodes WithCluster starts; the event stream then has as many
// replicas.
const ClusterSize = 3

// Registry is a running registry. Its methods are safe for concurrent use.
type Registry struct {
	cfg     config
	dir     string
	nodes   []*natstest.Node
	cluster *natstest.Cluster // nil for a single node
	proxies []*tcpproxy.Proxy // one per node, in front of it for the services' connections

	conn   *nats.Conn
	js     jetstream.JetStream
	client *api.Client
	store  *jetstore.Store

	services services

	mu      sync.Mutex // guards stopped and closed
	stopped bool
	closed  bool
}

// New starts a registry for the test t and stops it, removing its files, when the test ends.
// A registry that does not start in DefaultStartTimeout (or by the test's deadline) fails the
// test with the reason.
func New(t testing.TB, opts ...Option) *Registry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultStartTimeout)
	if d, ok := deadline(t); ok {
		ctx, cancel = context.WithDeadline(context.Background(), d)
	}
	defer cancel()
	r, err := Start(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("registrytest: %v", err)
		}
	})
	return r
}

// deadline returns the test's deadline, when it has one (a *testing.T run with -timeout),
// with a margin left for the failure's report.
func deadline(t testing.TB) (time.Time, bool) {
	dt, ok := t.(interface{ Deadline() (time.Time, bool) })
	if !ok {
		return time.Time{}, false
	}
	d, ok := dt.Deadline()
	if !ok || time.Until(d) > DefaultStartTimeout {
		return time.Time{}, false
	}
	return d.Add(-time.Until(d) / 10), true
}

// Start starts a registry without a test (in an example, a TestMain, a program): ctx bounds the
// start only. The caller stops it with Close.
func Start(ctx context.Context, opts ...Option) (*Registry, error) {
	var cfg config
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "registrytest-")
	if err != nil {
		return nil, fmt.Errorf("registrytest: temporary store directory: %w", err)
	}
	r := &Registry{cfg: cfg, dir: dir}
	if err := r.start(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("registrytest: start: %w", err), r.Close())
	}
	return r, nil
}

func (r *Registry) start(ctx context.Context) error {
	if err := r.startServers(); err != nil {
		return err
	}
	var err error
	r.conn, err = nats.Connect(r.URL(), nats.Name("registrytest"), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", r.URL(), err)
	}
	if r.js, err = jetstream.New(r.conn); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if r.client, err = api.NewClient(r.conn, r.cfg.clientOpts...); err != nil {
		return err
	}
	if err := r.services.start(ctx, r); err != nil {
		return err
	}
	if r.store, err = jetstore.New(r.js, r.storeConfig(), jetstore.WithUpcasters(resourcestore.Upcasters()...)); err != nil {
		return fmt.Errorf("event store: %w", err)
	}
	if err := r.awaitServing(ctx); err != nil {
		return err
	}
	for _, setup := range r.cfg.setups {
		if err := setup(ctx, r.client); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
	}
	return nil
}

// startServers starts the node or the cluster and a proxy in front of each node.
func (r *Registry) startServers() error {
	if r.cfg.cluster {
		c, err := natstest.StartCluster(r.dir, ClusterSize)
		if err != nil {
			return err
		}
		r.cluster, r.nodes = c, c.Nodes
	} else {
		n, err := natstest.StartServer(r.dir)
		if err != nil {
			return err
		}
		r.nodes = []*natstest.Node{n}
	}
	for _, n := range r.nodes {
		p, err := tcpproxy.New(strings.TrimPrefix(n.ClientURL(), "nats://"))
		if err != nil {
			return err
		}
		r.proxies = append(r.proxies, p)
	}
	return nil
}

// replicas is the replica count of every stream and bucket the registry creates.
func (r *Registry) replicas() int {
	if r.cfg.cluster {
		return ClusterSize
	}
	return 1
}

// storeConfig is the command service's event store configuration.
func (r *Registry) storeConfig() jetstore.Config {
	return jetstore.Config{Replicas: r.replicas(), KeyPrefix: jetstore.DefaultKeyPrefix}
}

// awaitServing waits until both services answer: the command service a read of the event
// store (an unknown resource's not_found), the query service a list. (A query service reports
// ready once its model has caught up, a moment before its endpoints reach the server.)
func (r *Registry) awaitServing(ctx context.Context) error {
	probes := []struct {
		service string
		answers func(context.Context) error
	}{
		{"command service", func(ctx context.Context) error {
			_, err := r.client.Get(ctx, api.Get{AggregateID: "00000000-0000-4000-8000-000000000000"})
			var e *api.Error
			if errors.As(err, &e) && e.Code == api.CodeNotFound {
				return nil
			}
			if err == nil {
				err = errors.New("a resource that was never registered was found")
			}
			return err
		}},
		{"query service", func(ctx context.Context) error {
			_, err := r.client.List(ctx, api.List{Limit: 1})
			return err
		}},
	}
	for _, p := range probes {
		for {
			attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := p.answers(attempt)
			cancel()
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("the %s does not answer: %w (last answer: %v)", p.service, ctx.Err(), err)
			case <-time.After(2 * time.Millisecond):
			}
		}
	}
	return nil
}

// URL is the NATS URL of the registry's server, for any NATS client (the nats CLI, cimctl, a
// tool under test); with WithCluster, the comma-separated URLs of every node. It stays the same
// across StopServer and RestartServer.
func (r *Registry) URL() string {
	urls := make([]string, len(r.nodes))
	for i, n := range r.nodes {
		urls[i] = n.ClientURL()
	}
	return strings.Join(urls, ",")
}

// Conn is a connection to the server that reconnects forever; Close closes it.
func (r *Registry) Conn() *nats.Conn { return r.conn }

// JetStream is the JetStream API on Conn.
func (r *Registry) JetStream() jetstream.JetStream { return r.js }

// Client is a client of the command and query services on Conn, built with the options of
// WithClientOptions.
func (r *Registry) Client() *api.Client { return r.client }

// Store is the event store the command service writes, on Conn, as it reads it (the domain's
// upcasters, the registry's stream and key subjects): for assertions on the events a command
// wrote. Resources are aggregates of type "computeresource" with their id.
func (r *Registry) Store() *jetstore.Store { return r.store }

// Close stops the services, the server and removes the store directory. It is safe to call more
// than once; New calls it when the test ends.
func (r *Registry) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	for _, p := range r.proxies {
		p.Resume()
	}
	ctx, cancel := context.WithTimeout(context.Background(), DefaultStartTimeout)
	defer cancel()
	err := r.services.stop(ctx)
	if r.store != nil {
		r.deleteConsumers(ctx)
	}
	if r.conn != nil {
		r.conn.Close()
	}
	for _, p := range r.proxies {
		p.Close()
	}
	r.mu.Lock() // not while StopServer or RestartServer runs
	for _, n := range r.nodes {
		n.Shutdown()
	}
	r.mu.Unlock()
	if rmErr := os.RemoveAll(r.dir); rmErr != nil {
		err = errors.Join(err, fmt.Errorf("registrytest: remove store directory: %w", rmErr))
	}
	return err
}

// deleteConsumers deletes the consumers the services left on the event stream: a server shutting
// down with pull requests still pending on a consumer tells their senders and waits a moment
// for the notice to leave, which would be most of Close's time. Failures are left to the
// shutdown.
func (r *Registry) deleteConsumers(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := r.js.Stream(ctx, r.store.Config().Stream)
	if err != nil {
		return
	}
	for consumer := range s.ConsumerNames(ctx).Name() {
		_ = s.DeleteConsumer(ctx, consumer)
	}
}

// AggregateType is the aggregate type of compute resources in Store.
const AggregateType = resourcestore.AggregateType

// ResourceRef is the address in Store of the resource with that id (a CommandReply's
// AggregateID).
func ResourceRef(id string) jetstore.AggregateRef {
	return jetstore.AggregateRef{Type: AggregateType, ID: id}
}
