// Command command-service is the command side of the CIM registry: a NATS micro service that
// validates commands, decides them against each resource's event history and appends the events
// to JetStream, and answers state and history queries. Without -nats-url it runs its own
// embedded JetStream server (./data, 127.0.0.1:4222). Every flag has an environment variable
// (nats-url: NATS_URL); run it with -h for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cim-infra/registry/internal/commandservice"
	"github.com/cim-infra/registry/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx)
	stop()
	os.Exit(code)
}

func run(ctx context.Context) int {
	var cfg commandservice.Config
	fs := flag.NewFlagSet(commandservice.ServiceName, flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	fs.Usage = config.Usage(fs)
	if err := config.Parse(fs, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	log, err := cfg.Log.Logger(commandservice.ServiceName)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := commandservice.Run(ctx, cfg, log); err != nil {
		log.Error().Err(err).Msg("command-service failed")
		return 1
	}
	log.Info().Msg("command-service stopped")
	return 0
}
