package metricsprojector

import (
	"context"
	"flag"
	"fmt"

	"github.com/cim-infra/registry/internal/ops"
	"github.com/cim-infra/registry/internal/servicemain"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// ServiceName names the service in logs and in its NATS connection.
const ServiceName = "projector-metrics"

// DefaultHTTPAddr is the operations server's default address.
const DefaultHTTPAddr = ":8081"

// Config is every setting of the service.
type Config struct {
	servicemain.Common
	Options Options
}

// RegisterFlags defines every flag the service accepts on fs, with the service's defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	o := &c.Options
	o.fillDefaults()
	c.Common.RegisterFlags(fs, servicemain.DefaultNATSURL, DefaultHTTPAddr)
	fs.StringVar(&o.Stream, "stream", o.Stream, "event stream to project")
	fs.IntVar(&o.BatchSize, "batch-size", o.BatchSize, "most events the durable consumer applies in one batch (1 to 10000)")
	fs.DurationVar(&o.AckWait, "ack-wait", o.AckWait, "how long the server waits for an acknowledgement before redelivering (0: 30s)")
	fs.StringVar(&o.Bucket, "snapshot-bucket", o.Bucket, "JetStream Object Store bucket keeping the projector's snapshot (created if missing)")
	fs.IntVar(&o.BucketReplicas, "snapshot-replicas", o.BucketReplicas, "replicas of the snapshot bucket when the projector creates it (1, 3 or 5)")
	fs.IntVar(&o.SnapshotEvery, "snapshot-every", o.SnapshotEvery, "write a snapshot once this many events were applied since the last one")
	fs.DurationVar(&o.SnapshotInterval, "snapshot-interval", o.SnapshotInterval, "write a snapshot at least this often while events arrive (and always at shutdown)")
	fs.DurationVar(&o.ProgressEvery, "progress-every", o.ProgressEvery, "how often catch-up progress (applied, total, rate, time left) is logged")
	fs.StringVar(&o.DeadLetter.Stream, "dead-letter-stream", o.DeadLetter.Stream, "stream keeping undecodable events (subject cim.dlq.metrics, reason in header Cim-Dlq-Reason)")
}

// Run connects to NATS, serves /healthz, /readyz and /metrics, and runs the projector until ctx
// is done. Then readiness goes false, the projector stops taking batches, writes its final
// snapshot, and the NATS connection is drained (servicemain.Serve). It returns nil after a
// clean stop.
func Run(ctx context.Context, cfg Config, log zerolog.Logger) error {
	return servicemain.Serve(ctx, ServiceName, cfg.Common, log, func(_ context.Context, nc *nats.Conn, reg *prometheus.Registry) (*servicemain.Serving, error) {
		js, err := jetstream.New(nc)
		if err != nil {
			return nil, fmt.Errorf("metricsprojector: jetstream: %w", err)
		}
		p, err := New(js, cfg.Options, log, reg)
		if err != nil {
			return nil, err
		}
		return &servicemain.Serving{Ready: map[string]ops.Check{"projector": p.Ready}, Role: func() string { return string(p.Role()) }, Work: p.Run}, nil
	})
}
