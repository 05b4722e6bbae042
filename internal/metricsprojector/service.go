package metricsprojector

import (
	"context"
	"flag"
	"fmt"

	"github.com/cim-infra/registry/internal/logging"
	"github.com/cim-infra/registry/internal/natsconn"
	"github.com/cim-infra/registry/internal/ops"
	"github.com/cim-infra/registry/internal/servicemain"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// ServiceName names the service in logs and in its NATS connection.
const ServiceName = "projector-metrics"

// Default listen addresses.
const (
	DefaultHTTPAddr = ":8081"
	DefaultNATSURL  = "nats://127.0.0.1:4222" // where the command service's embedded server listens
)

// Config is every setting of the service.
type Config struct {
	NATS    natsconn.Config
	HTTP    ops.Config
	Log     logging.Config
	Options Options
}

// RegisterFlags defines every flag the service accepts on fs, with the service's defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	if c.NATS.URL == "" {
		c.NATS.URL = DefaultNATSURL
	}
	if c.HTTP.Addr == "" {
		c.HTTP.Addr = DefaultHTTPAddr
	}
	o := &c.Options
	o.fillDefaults()
	c.NATS.RegisterFlags(fs)
	c.HTTP.RegisterFlags(fs)
	c.Log.RegisterFlags(fs)
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
// snapshot, and the NATS connection is drained. It returns nil after a clean stop.
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
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("metricsprojector: jetstream: %w", err)
	}
	reg := prometheus.NewRegistry()
	p, err := New(js, cfg.Options, log, reg)
	if err != nil {
		return err
	}
	srv := ops.New(cfg.HTTP.Addr, reg, log)
	srv.AddReadiness("projector", p.Ready)
	srv.SetRole(func() string { return string(p.Role()) })
	srv.AddReadiness("nats", ops.NATSConnected(nc))
	if err := srv.Listen(); err != nil {
		return err
	}
	return servicemain.Serve(ctx, ServiceName, srv, nc, p.Run, log)
}
