// Command projector-metrics keeps Prometheus figures of the CIM registry (fleet by status, type
// and category; events by type; status transitions) from the event stream, and serves them on
// /metrics with /healthz and /readyz. Every flag has an environment variable (nats-url: NATS_URL).
package main

import (
	"context"

	"github.com/cim-infra/registry/internal/metricsprojector"
	"github.com/cim-infra/registry/internal/servicemain"
	"github.com/rs/zerolog"
)

func main() {
	var cfg metricsprojector.Config
	servicemain.Main(servicemain.Service{
		Name:          metricsprojector.ServiceName,
		RegisterFlags: cfg.RegisterFlags,
		Logger:        func(name string) (zerolog.Logger, error) { return cfg.Log.Logger(name) },
		Run:           func(ctx context.Context, log zerolog.Logger) error { return metricsprojector.Run(ctx, cfg, log) },
	})
}
