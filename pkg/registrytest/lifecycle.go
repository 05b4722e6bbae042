package registrytest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrClosed is returned by the methods of a registry that was closed.
var ErrClosed = errors.New("registrytest: registry closed")

// StopServer shuts the NATS server down (every node, with WithCluster), as a crash or an
// operator would: clients and services lose their connections and try to reconnect, requests
// fail (no responders, time-outs, disconnects). Nothing is lost: RestartServer starts it again
// on the same store and ports.
func (r *Registry) StopServer() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	for _, n := range r.nodes {
		n.Shutdown()
	}
	r.stopped = true
}

// RestartServer starts the server that StopServer stopped on its store and ports, and returns
// once the command service answers again (its connection, and Conn, have reconnected), or with
// an error when ctx is done first. On a running server it does nothing more than that wait.
func (r *Registry) RestartServer(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	if r.stopped {
		for _, n := range r.nodes {
			if n.Running() {
				continue
			}
			if err := n.Start(); err != nil {
				r.mu.Unlock()
				return fmt.Errorf("registrytest: restart server: %w", err)
			}
		}
		r.stopped = false
	}
	r.mu.Unlock()
	if r.cluster != nil {
		if err := r.cluster.AwaitReady(ctx); err != nil {
			return fmt.Errorf("registrytest: restart server: %w", err)
		}
	}
	if err := r.awaitServing(ctx); err != nil {
		return fmt.Errorf("registrytest: restart server: %w", err)
	}
	return nil
}

// PauseServices freezes the registry's services (command service, query service, metrics
// projector) as a stopped process is frozen: their connections stay open, requests reach the
// server and wait there unanswered, so a client's time-out runs out (api.KindTimeout) and its
// retries are tried. ResumeServices lets them go on: a command whose caller gave up is then
// answered deadline_exceeded and not applied (see api.HeaderDeadline).
func (r *Registry) PauseServices() {
	for _, p := range r.proxies {
		p.Pause()
	}
}

// ResumeServices ends PauseServices.
func (r *Registry) ResumeServices() {
	for _, p := range r.proxies {
		p.Resume()
	}
}

// Metrics gathers the metrics projector's figures (cim_resources, cim_events_total,
// cim_status_transitions_total) and its own metrics, as its /metrics serves them, or returns
// nil without WithMetricsProjector.
func (r *Registry) Metrics() prometheus.Gatherer {
	if r.services.gatherer == nil {
		return nil
	}
	return r.services.gatherer
}

// WaitForMetrics waits until the metrics projector's figures include every event up to the
// stream sequence seq (a CommandReply's Version is one), or ctx is done.
func (r *Registry) WaitForMetrics(ctx context.Context, seq uint64) error {
	p := r.services.metrics
	if p == nil {
		return fmt.Errorf("%w: no metrics projector (WithMetricsProjector)", ErrInvalidOption)
	}
	for p.Sequence() < seq {
		select {
		case <-ctx.Done():
			return fmt.Errorf("registrytest: metrics at sequence %d, waiting for %d: %w", p.Sequence(), seq, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}
