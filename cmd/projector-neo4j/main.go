// Command projector-neo4j projects the compute resource events of the event stream into a Neo4j
// graph (docs/graph-model.md). Run "projector-neo4j -h" for its settings; every flag can also be
// given as an environment variable (-neo4j-password as NEO4J_PASSWORD). "projector-neo4j
// -rebuild" empties the projected graph and replays the whole stream before going on live.
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
	"github.com/cim-infra/registry/internal/neo4jprojector"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx)
	stop()
	os.Exit(code)
}

func run(ctx context.Context) int {
	var cfg neo4jprojector.Config
	fs := flag.NewFlagSet(neo4jprojector.ServiceName, flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	fs.Usage = config.Usage(fs)
	if err := config.Parse(fs, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "%s: %v\n", neo4jprojector.ServiceName, err)
		return 2
	}
	log, err := cfg.Log.Logger(neo4jprojector.ServiceName)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", neo4jprojector.ServiceName, err)
		return 2
	}
	if err := neo4jprojector.Run(ctx, cfg, log); err != nil {
		log.Error().Err(err).Msg("stopped with an error")
		return 1
	}
	return 0
}
