package queryservice

import (
	"context"

	"github.com/cim-infra/registry/internal/natsconn"
	"github.com/cim-infra/registry/internal/ops"
	"github.com/cim-infra/registry/internal/servicemain"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Run connects to NATS, serves /healthz, /readyz and /metrics, builds the model and answers
// queries until ctx is done. Then readiness goes false, the instance leaves the queue group,
// finishes the queries in flight, and the NATS connection is drained. It returns nil after a
// clean stop.
func Run(ctx context.Context, cfg Config, log zerolog.Logger) error {
	if cfg.NATS.Name == "" {
		cfg.NATS.Name = ServiceName
	}
	if cfg.HTTP.Addr == "" {
		cfg.HTTP.Addr = DefaultHTTPAddr
	}
	nc, err := natsconn.Connect(ctx, cfg.NATS, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	reg := prometheus.NewRegistry()
	svc, err := New(nc, cfg.Options, log, reg)
	if err != nil {
		return err
	}
	srv := ops.New(cfg.HTTP.Addr, reg, log)
	srv.AddReadiness("model", svc.Ready)
	srv.AddReadiness("nats", ops.NATSConnected(nc))
	if err := srv.Listen(); err != nil {
		return err
	}
	return servicemain.Serve(ctx, ServiceName, srv, nc, svc.Run, log)
}
