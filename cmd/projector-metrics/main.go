// Command projector-metrics keeps Prometheus figures of the CIM registry (fleet by status, type
// and category; events by type; status transitions) from the event stream, and serves them on
// /metrics with /healthz and /readyz. Every flag has an environment variable (nats-url: NATS_URL).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cim-infra/registry/internal/config"
	"github.com/cim-infra/registry/internal/metricsprojector"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx)
	stop()
	os.Exit(code)
}

func run(ctx context.Context) int {
	var cfg metricsprojector.Config
	fs := flag.NewFlagSet(metricsprojector.ServiceName, flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	fs.Usage = config.Usage(fs)
	if err := config.Parse(fs, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	log, err := cfg.Log.Logger(metricsprojector.ServiceName)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := metricsprojector.Run(ctx, cfg, log); err != nil {
		log.Error().Err(err).Msg("projector-metrics failed")
		return 1
	}
	log.Info().Msg("projector-metrics stopped")
	return 0
}
