// Package servicemain is what every service's main shares: signal handling, flags with their
// environment variables, the logger, and the wiring that runs a service's work beside its
// operations server and drains the NATS connection at the end.
package servicemain

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cim-infra/registry/internal/config"
	"github.com/cim-infra/registry/internal/ops"
	"github.com/cim-infra/registry/internal/tracing"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// Service is what Main needs of a service.
type Service struct {
	// Name is the service's name, for the flag set, logs and messages.
	Name string
	// RegisterFlags registers every flag of the service.
	RegisterFlags func(*flag.FlagSet)
	// Logger builds the logger from the parsed flags.
	Logger func(service string) (zerolog.Logger, error)
	// Run runs the service until ctx is done; nil means a clean stop.
	Run func(ctx context.Context, log zerolog.Logger) error
}

// Main runs s with the process's arguments until SIGINT or SIGTERM and exits: 0 after a clean
// stop (or -h), 2 for bad settings, 1 when the service failed.
func Main(s Service) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Run(ctx, s, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// Run is Main without the process: it parses args (environment variables fill the flags not
// given), builds the logger, sets up tracing from the OTEL_* environment variables
// (tracing.Setup) and runs the service, and returns the exit code.
func Run(ctx context.Context, s Service, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet(s.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	s.RegisterFlags(fs)
	fs.Usage = config.Usage(fs)
	if err := config.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "%s: %v\n", s.Name, err)
		return 2
	}
	log, err := s.Logger(s.Name)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", s.Name, err)
		return 2
	}
	shutdownTracing, err := tracing.Setup(ctx, s.Name)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", s.Name, err)
		return 2
	}
	defer func() {
		if err := tracing.Shutdown(shutdownTracing); err != nil {
			log.Warn().Err(err).Msg("export of the last spans failed")
		}
	}()
	if err := s.Run(ctx, log); err != nil {
		log.Error().Err(err).Msg(s.Name + " failed")
		return 1
	}
	log.Info().Msg(s.Name + " stopped")
	return 0
}

// Serve runs work beside the operations server srv (already listening) until ctx is done or
// either of them stops. On ctx's end readiness goes false first, then work is given the time it
// needs to finish (its own context is cancelled only after it returned), then the operations
// server stops and nc is drained, so that the last acknowledgements reach the server. A work or
// server that stops by itself while ctx is live is an error.
func Serve(ctx context.Context, name string, srv *ops.Server, nc *nats.Conn, work func(context.Context) error, log zerolog.Logger) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	opsDone := make(chan error, 1)
	go func() { opsDone <- srv.Run(runCtx) }()
	workDone := make(chan error, 1)
	go func() { workDone <- work(runCtx) }()

	var runErr error
	select {
	case <-ctx.Done():
		log.Info().Msg("shutting down")
		srv.SetShuttingDown()
		runErr = <-workDone
	case runErr = <-workDone:
		if runErr == nil && ctx.Err() == nil {
			runErr = fmt.Errorf("%s: stopped by itself", name)
		}
	case runErr = <-opsDone:
		if runErr == nil {
			runErr = fmt.Errorf("%s: operations server stopped", name)
		}
		cancel()
		<-workDone
		return errors.Join(runErr, Drain(nc))
	}
	cancel()
	return errors.Join(runErr, <-opsDone, Drain(nc))
}

// Drain flushes what nc has in flight and waits (10s at most) until it is closed.
func Drain(nc *nats.Conn) error {
	if err := nc.Drain(); err != nil {
		return fmt.Errorf("drain NATS connection: %w", err)
	}
	for deadline := time.Now().Add(10 * time.Second); !nc.IsClosed() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}
