// Command query-service answers list, count and trace queries about the CIM registry from a read
// model that each instance builds from the event stream, on NATS micro, with /healthz, /readyz
// and /metrics. Every flag has an environment variable (nats-url: NATS_URL).
package main

import (
	"context"

	"github.com/cim-infra/registry/internal/queryservice"
	"github.com/cim-infra/registry/internal/servicemain"
	"github.com/rs/zerolog"
)

func main() {
	var cfg queryservice.Config
	servicemain.Main(servicemain.Service{
		Name:          queryservice.ServiceName,
		RegisterFlags: cfg.RegisterFlags,
		Logger:        func(name string) (zerolog.Logger, error) { return cfg.Log.Logger(name) },
		Run:           func(ctx context.Context, log zerolog.Logger) error { return queryservice.Run(ctx, cfg, log) },
	})
}
