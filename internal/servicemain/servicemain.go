// Package servicemain is the one lifecycle of the registry's services: signal handling, flags
// with their environment variables, the logger, the NATS connection, the operations server
// (/healthz, /readyz, /metrics) and the graceful stop, in one order for every service. It knows
// no service: a service hands it a Start function (serve.go) and its settings embed Common.
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
	"github.com/cim-infra/registry/internal/logging"
	"github.com/cim-infra/registry/internal/natsconn"
	"github.com/cim-infra/registry/internal/ops"
	"github.com/rs/zerolog"
)

// Defaults of the shared settings.
const (
	// DefaultNATSURL is where the command service's embedded server listens: the NATS URL of
	// every other service when none is given.
	DefaultNATSURL = "nats://127.0.0.1:4222"
	// DefaultShutdownTimeout is the default of -shutdown-timeout.
	DefaultShutdownTimeout = 20 * time.Second
)

// FlagShutdownTimeout is the flag Common.RegisterFlags defines for ShutdownTimeout
// (environment variable SHUTDOWN_TIMEOUT).
const FlagShutdownTimeout = "shutdown-timeout"

// Common are the settings every service has: how it reaches NATS, where its operations server
// listens, how it logs, and how long it may take to stop. A service's Config embeds it.
type Common struct {
	NATS natsconn.Config
	HTTP ops.Config
	Log  logging.Config
	// ShutdownTimeout bounds a stop: the requests and work in flight, then the drain of the
	// NATS connection.
	ShutdownTimeout time.Duration
}

// RegisterFlags defines the shared flags on fs with c's current values as defaults, and natsURL
// and httpAddr, the service's own defaults, where c has no NATS URL or HTTP address.
func (c *Common) RegisterFlags(fs *flag.FlagSet, natsURL, httpAddr string) {
	if c.NATS.URL == "" {
		c.NATS.URL = natsURL
	}
	if c.HTTP.Addr == "" {
		c.HTTP.Addr = httpAddr
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	c.NATS.RegisterFlags(fs)
	c.HTTP.RegisterFlags(fs)
	c.Log.RegisterFlags(fs)
	fs.DurationVar(&c.ShutdownTimeout, FlagShutdownTimeout, c.ShutdownTimeout,
		"time allowed on SIGTERM for the requests and work in flight to finish and the NATS connection to drain")
}

// ErrInvalidConfig is wrapped by the errors of settings that Serve and RunOnce refuse.
var ErrInvalidConfig = errors.New("servicemain: invalid configuration")

func (c Common) validate() error {
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("%w: -%s %s, want more than 0", ErrInvalidConfig, FlagShutdownTimeout, c.ShutdownTimeout)
	}
	return nil
}

// Shared returns c; a Config that embeds Common has it as its own method.
func (c *Common) Shared() *Common { return c }

// Config is what the runner needs of a service's settings: every flag, and the shared part.
type Config interface {
	RegisterFlags(fs *flag.FlagSet)
	Shared() *Common
}

// Service is a service as its main sees it. Build it with New.
type Service struct {
	// Name is the service's name, for the flag set, logs and messages.
	Name string
	// bind returns new settings of the service and its run bound to them.
	bind func() (Config, func(context.Context, zerolog.Logger) error)
}

// New returns the service name whose body is run: run gets the settings (type C, whose pointer
// is a Config) as flags and environment gave them, and the logger built from them.
func New[C any, P interface {
	*C
	Config
}](name string, run func(ctx context.Context, cfg C, log zerolog.Logger) error) Service {
	return Service{Name: name, bind: func() (Config, func(context.Context, zerolog.Logger) error) {
		cfg := new(C)
		return P(cfg), func(ctx context.Context, log zerolog.Logger) error { return run(ctx, *cfg, log) }
	}}
}

// Main runs s with the process's arguments until SIGINT or SIGTERM and exits: 0 after a clean
// stop (or -h), 2 for bad settings, 1 when the service failed.
func (s Service) Main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := s.Run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// Run is Main without the process: it parses args (environment variables fill the flags not
// given), builds the logger (writing to stderr) and runs the service until ctx is done, and
// returns the exit code. Setup that the whole service needs for its lifetime (a tracer
// provider from the environment, with its shutdown deferred) belongs here, between the logger
// and the run.
func (s Service) Run(ctx context.Context, args []string, stderr io.Writer) int {
	cfg, run := s.bind()
	fs := flag.NewFlagSet(s.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.RegisterFlags(fs)
	fs.Usage = config.Usage(fs)
	if err := config.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "%s: %v\n", s.Name, err)
		return 2
	}
	lc := cfg.Shared().Log
	log, err := logging.NewTo(stderr, s.Name, lc.Level, lc.Format)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", s.Name, err)
		return 2
	}
	if err := run(ctx, log); err != nil {
		log.Error().Err(err).Msg(s.Name + " failed")
		return 1
	}
	log.Info().Msg(s.Name + " stopped")
	return 0
}
