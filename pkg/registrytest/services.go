package registrytest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cim-infra/registry/internal/commandservice"
	"github.com/cim-infra/registry/internal/metricsprojector"
	"github.com/cim-infra/registry/internal/projector"
	"github.com/cim-infra/registry/internal/queryservice"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// services are the registry's services, each on its own connection through the proxies, so
// that PauseServices freezes all of them.
type services struct {
	conns    []*nats.Conn
	command  *commandservice.Service
	cancel   context.CancelFunc // stops the query service and the projector
	running  []chan error       // their Run's results
	metrics  *metricsprojector.Projector
	gatherer *prometheus.Registry
}

// connect opens a service's connection through the proxies. It ignores the servers the cluster
// announces: a connection to a node directly would not be paused.
func (s *services) connect(r *Registry, name string) (*nats.Conn, error) {
	urls := make([]string, len(r.proxies))
	for i, p := range r.proxies {
		urls[i] = "nats://" + p.Addr()
	}
	nc, err := nats.Connect(strings.Join(urls, ","), nats.Name(name), nats.IgnoreDiscoveredServers(),
		nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("%s: connect: %w", name, err)
	}
	s.conns = append(s.conns, nc)
	return nc, nil
}

func (s *services) start(ctx context.Context, r *Registry) error {
	log := zerolog.Nop()
	if r.cfg.log != nil {
		log = zerolog.New(r.cfg.log).With().Timestamp().Logger()
	}
	nc, err := s.connect(r, commandservice.ServiceName)
	if err != nil {
		return err
	}
	// Without snapshots, in both services: they spare a restart the reading of long histories,
	// which a registry that lives for one test does not have, and cost buckets to create and
	// remove.
	opts := commandservice.DefaultOptions()
	opts.NoSnapshots = true
	s.command, err = commandservice.New(ctx, nc, r.storeConfig(), opts, log, prometheus.NewRegistry())
	if err != nil {
		return err
	}

	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if nc, err = s.connect(r, queryservice.ServiceName); err != nil {
		return err
	}
	query, err := queryservice.New(nc, queryservice.Options{NoSnapshots: true,
		DeadLetter: projector.DeadLetterConfig{Replicas: r.replicas()}}, log, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	s.run(runCtx, query.Run)
	readies := []func(context.Context) error{query.Ready}

	if r.cfg.metrics {
		if nc, err = s.connect(r, metricsprojector.ServiceName); err != nil {
			return err
		}
		js, err := jetstream.New(nc)
		if err != nil {
			return fmt.Errorf("metrics projector: jetstream: %w", err)
		}
		s.gatherer = prometheus.NewRegistry()
		s.metrics, err = metricsprojector.New(js, metricsprojector.Options{BucketReplicas: r.replicas(),
			DeadLetter: projector.DeadLetterConfig{Replicas: r.replicas()}}, log, s.gatherer)
		if err != nil {
			return err
		}
		s.run(runCtx, s.metrics.Run)
		readies = append(readies, s.metrics.Ready)
	}
	for _, ready := range readies {
		if err := s.await(ctx, ready); err != nil {
			return err
		}
	}
	return nil
}

func (s *services) run(ctx context.Context, run func(context.Context) error) {
	done := make(chan error, 1)
	s.running = append(s.running, done)
	go func() { done <- run(ctx) }()
}

// await polls ready until it reports nil, a service's Run has ended, or ctx is done.
func (s *services) await(ctx context.Context, ready func(context.Context) error) error {
	for {
		err := ready(ctx)
		if err == nil {
			return nil
		}
		for _, done := range s.running {
			select {
			case runErr := <-done:
				done <- runErr // for stop
				return fmt.Errorf("a service stopped while starting: %v", runErr)
			default:
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("services not ready: %w (last: %v)", ctx.Err(), err)
		case <-time.After(time.Millisecond):
		}
	}
}

// stop stops the services (the command service first, as a rolling stop would) and closes
// their connections.
func (s *services) stop(ctx context.Context) error {
	var errs []error
	if s.command != nil {
		if err := s.command.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if s.cancel != nil {
		s.cancel()
	}
	for _, done := range s.running {
		select {
		case err := <-done:
			if err != nil {
				errs = append(errs, err)
			}
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("a service did not stop: %w", ctx.Err()))
		}
	}
	for _, nc := range s.conns {
		nc.Close()
	}
	return errors.Join(errs...)
}
