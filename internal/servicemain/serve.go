package servicemain

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cim-infra/registry/internal/natsconn"
	"github.com/cim-infra/registry/internal/ops"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Start starts an instance of a service on nc, with its metrics in reg, and returns what the
// runner drives. ctx ends when the service is asked to stop.
type Start func(ctx context.Context, nc *nats.Conn, reg *prometheus.Registry) (*Serving, error)

// Serving is a started instance, as the runner drives it.
type Serving struct {
	// Ready are the instance's readiness checks, besides the NATS connection's ("nats").
	Ready map[string]ops.Check
	// Role, when set, is the replica's role on /readyz (see ops.Server.SetRole).
	Role func() string
	// Work, when set, runs until its context is done: a projector's loop, a read model's
	// follower. Work that returns before is a failure of the service.
	Work func(ctx context.Context) error
	// Stop, when set, stops taking requests (requests already delivered get a refusal) and
	// waits for those in flight, at most until ctx is done.
	Stop func(ctx context.Context) error
}

// Serve runs one instance of the service name: it connects to NATS (set.NATS, named name unless
// it has a name), starts the instance, serves /healthz, /readyz and /metrics on set.HTTP, and
// runs until ctx is done or the instance's work or the operations server stops. Then it stops
// in one order, within set.ShutdownTimeout: readiness goes false; Stop (no new requests, those
// in flight finish); the work's context is cancelled and the work returns; the NATS connection
// drains (what is still buffered is handled, replies and acknowledgements reach the server);
// the operations server stops last. It returns nil after a clean stop.
func Serve(ctx context.Context, name string, set Common, log zerolog.Logger, start Start) error {
	nc, err := connect(ctx, name, set, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	reg := prometheus.NewRegistry()
	sv, err := start(ctx, nc, reg)
	if err != nil {
		return err
	}
	srv := ops.New(set.HTTP.Addr, reg, log)
	srv.AddReadiness("nats", ops.NATSConnected(nc))
	for check, f := range sv.Ready {
		srv.AddReadiness(check, f)
	}
	if sv.Role != nil {
		srv.SetRole(sv.Role)
	}
	if err := srv.Listen(); err != nil {
		sctx, cancel := shutdownContext(ctx, set)
		defer cancel()
		return errors.Join(err, sv.stop(sctx), drain(sctx, nc, log))
	}

	opsCtx, stopOps := context.WithCancel(context.WithoutCancel(ctx))
	defer stopOps()
	opsDone := make(chan error, 1)
	go func() { opsDone <- srv.Run(opsCtx) }()
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	var workDone chan error // stays nil without work: never ready
	if sv.Work != nil {
		workDone = make(chan error, 1)
		go func() { workDone <- sv.Work(workCtx) }()
	}

	errs := make([]error, 0, 5)
	select {
	case <-ctx.Done():
		log.Info().Msg("shutting down")
	case err := <-workDone:
		errs = append(errs, cmp.Or(err, fmt.Errorf("%s: stopped by itself", name)))
		workDone = nil
	case err := <-opsDone:
		errs = append(errs, cmp.Or(err, fmt.Errorf("%s: operations server stopped", name)))
		opsDone = nil
	}
	srv.SetShuttingDown()
	sctx, cancel := shutdownContext(ctx, set)
	defer cancel()
	errs = append(errs, sv.stop(sctx))
	stopWork()
	if workDone != nil {
		select {
		case err := <-workDone:
			errs = append(errs, err)
		case <-sctx.Done():
			errs = append(errs, fmt.Errorf("%s: still working at the end of the shutdown timeout: %w", name, sctx.Err()))
		}
	}
	errs = append(errs, drain(sctx, nc, log))
	stopOps()
	if opsDone != nil {
		errs = append(errs, <-opsDone)
	}
	return errors.Join(errs...)
}

// RunOnce is Serve for a service's one-shot mode: it connects to NATS as Serve does, runs job
// on the connection, and drains it. It serves no operations endpoints.
func RunOnce(ctx context.Context, name string, set Common, log zerolog.Logger, job func(context.Context, *nats.Conn) error) error {
	nc, err := connect(ctx, name, set, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	err = job(ctx, nc)
	sctx, cancel := shutdownContext(ctx, set)
	defer cancel()
	return errors.Join(err, drain(sctx, nc, log))
}

// connect checks set and connects to NATS, naming the connection name unless set.NATS has a name.
func connect(ctx context.Context, name string, set Common, log zerolog.Logger) (*nats.Conn, error) {
	if err := set.validate(); err != nil {
		return nil, err
	}
	cfg := set.NATS
	if cfg.Name == "" {
		cfg.Name = name
	}
	return natsconn.Connect(ctx, cfg, log)
}

func (sv *Serving) stop(ctx context.Context) error {
	if sv.Stop == nil {
		return nil
	}
	return sv.Stop(ctx)
}

// shutdownContext bounds a stop by set.ShutdownTimeout; it outlives ctx, whose end starts the
// stop.
func shutdownContext(ctx context.Context, set Common) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), set.ShutdownTimeout)
}

// drain drains nc (what its subscriptions still hold is handled, what it has buffered is
// flushed) and waits until it is closed, at most until ctx is done.
func drain(ctx context.Context, nc *nats.Conn, log zerolog.Logger) error {
	if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("drain NATS connection: %w", err)
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !nc.IsClosed() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("drain NATS connection: %w", ctx.Err())
		case <-t.C:
		}
	}
	log.Info().Msg("nats connection drained")
	return nil
}
