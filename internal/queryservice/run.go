package queryservice

import (
	"context"

	"github.com/cim-infra/registry/internal/ops"
	"github.com/cim-infra/registry/internal/servicemain"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Run connects to NATS, serves /healthz, /readyz and /metrics, builds the model and answers
// queries until ctx is done. Then readiness goes false, the instance leaves the queue group,
// finishes the queries in flight, stops following the stream, and the NATS connection is
// drained (servicemain.Serve). It returns nil after a clean stop.
func Run(ctx context.Context, cfg Config, log zerolog.Logger) error {
	return servicemain.Serve(ctx, ServiceName, cfg.Common, log, func(_ context.Context, nc *nats.Conn, reg *prometheus.Registry) (*servicemain.Serving, error) {
		svc, err := New(nc, cfg.Options, log, reg)
		if err != nil {
			return nil, err
		}
		return &servicemain.Serving{Ready: map[string]ops.Check{"model": svc.Ready}, Work: svc.Run}, nil
	})
}
