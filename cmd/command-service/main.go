// Command command-service is the command side of the CIM registry: a NATS micro service that
// validates commands, decides them against each resource's event history and appends the events
// to JetStream, and answers state and history queries. Without -nats-url it runs its own
// embedded JetStream server (./data, 127.0.0.1:4222) and connects to it in-process. Every flag has an environment variable
// (nats-url: NATS_URL); run it with -h for the list.
package main

import (
	"context"

	"github.com/cim-infra/registry/internal/commandservice"
	"github.com/cim-infra/registry/internal/servicemain"
	"github.com/rs/zerolog"
)

func main() {
	var cfg commandservice.Config
	servicemain.Main(servicemain.Service{
		Name:          commandservice.ServiceName,
		RegisterFlags: cfg.RegisterFlags,
		Logger:        func(name string) (zerolog.Logger, error) { return cfg.Log.Logger(name) },
		Run:           func(ctx context.Context, log zerolog.Logger) error { return commandservice.Run(ctx, cfg, log) },
	})
}
