package neo4jprojector

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/cim-infra/registry/internal/ops"
	"github.com/cim-infra/registry/internal/projector"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/internal/retry"
	"github.com/cim-infra/registry/internal/servicemain"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// ServiceName names the service in logs and in its NATS connection.
const ServiceName = "projector-neo4j"

// Defaults of the service's settings.
const (
	DefaultHTTPAddr      = ":8082"
	DefaultNeo4jURI      = "bolt://127.0.0.1:7687"
	DefaultNeo4jUser     = "neo4j"
	DefaultBatchSize     = 256
	DefaultPriorityGroup = "neo4j"
	// ProjectorName names the projector in metrics (projector="neo4j"), dead letters
	// (cim.dlq.neo4j) and the checkpoint node.
	ProjectorName = "neo4j"
	// DurableName is the durable consumer's name.
	DurableName = "projector-neo4j"
)

// Config is every setting of the service.
type Config struct {
	servicemain.Common

	Neo4jURI      string
	Neo4jUser     string
	Neo4jPassword string
	Neo4jDatabase string

	Stream        string
	SubjectPrefix string
	BatchSize     int
	FetchWait     time.Duration
	PinnedTTL     time.Duration
	MaxBackoff    time.Duration
	ProgressEvery time.Duration
	DLQStream     string
	DLQReplicas   int
	// Rebuild empties the projected graph and replays the whole stream before going on live.
	Rebuild bool
}

// RegisterFlags defines every flag the service accepts on fs, with the service's defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	setDefault(&c.Neo4jURI, DefaultNeo4jURI)
	setDefault(&c.Neo4jUser, DefaultNeo4jUser)
	setDefault(&c.Stream, jetstore.DefaultStream)
	setDefault(&c.SubjectPrefix, jetstore.DefaultSubjectPrefix)
	setDefault(&c.DLQStream, "CIM_DLQ")
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.FetchWait == 0 {
		c.FetchWait = time.Second
	}
	if c.PinnedTTL == 0 {
		c.PinnedTTL = 10 * time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 10 * time.Second
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = 5 * time.Second
	}
	if c.DLQReplicas == 0 {
		c.DLQReplicas = 1
	}
	c.Common.RegisterFlags(fs, servicemain.DefaultNATSURL, DefaultHTTPAddr)
	fs.StringVar(&c.Neo4jURI, "neo4j-uri", c.Neo4jURI, "Neo4j Bolt URI (bolt://, neo4j://, or +s / +ssc for TLS)")
	fs.StringVar(&c.Neo4jUser, "neo4j-user", c.Neo4jUser, "Neo4j user; empty for a server without authentication")
	fs.StringVar(&c.Neo4jPassword, "neo4j-password", c.Neo4jPassword, "Neo4j password; prefer the environment variable NEO4J_PASSWORD, which ps does not show")
	fs.StringVar(&c.Neo4jDatabase, "neo4j-database", c.Neo4jDatabase, "Neo4j database to project into (default: the server's default database)")
	fs.StringVar(&c.Stream, "stream", c.Stream, "event stream to project")
	fs.StringVar(&c.SubjectPrefix, "subject-prefix", c.SubjectPrefix, "subject prefix of the event stream; the projector consumes <prefix>.computeresource.>")
	fs.IntVar(&c.BatchSize, "batch-size", c.BatchSize, "most events applied in one Neo4j transaction (1 to 10000)")
	fs.DurationVar(&c.FetchWait, "fetch-wait", c.FetchWait, "how long one fetch waits for events before an empty batch")
	fs.DurationVar(&c.PinnedTTL, "pinned-ttl", c.PinnedTTL, "take-over time: how long the active replica may be silent before a standby takes over (the events it held included)")
	fs.DurationVar(&c.MaxBackoff, "max-backoff", c.MaxBackoff, "longest wait between retries of a batch while Neo4j is unreachable")
	fs.DurationVar(&c.ProgressEvery, "progress-every", c.ProgressEvery, "how often catch-up progress (applied, remaining, rate, time left) is logged")
	fs.StringVar(&c.DLQStream, "dead-letter-stream", c.DLQStream, "stream keeping events that cannot be projected (subject cim.dlq.neo4j, reason in header Cim-Dlq-Reason)")
	fs.IntVar(&c.DLQReplicas, "dead-letter-replicas", c.DLQReplicas, "replicas of the dead-letter stream when the projector creates it (1, 3 or 5)")
	fs.BoolVar(&c.Rebuild, "rebuild", c.Rebuild, "empty the projected graph, replay the whole stream into it with progress logs, then go on live; refused unless no other replica consumes (stop them first)")
}

func setDefault(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

// RunnerConfig is the durable consumer configuration of the service.
func (c Config) RunnerConfig() projector.Config {
	return projector.Config{
		Name:          ProjectorName,
		Stream:        c.Stream,
		Durable:       DurableName,
		FilterSubject: c.SubjectPrefix + "." + resourcestore.AggregateType + ".>",
		BatchSize:     c.BatchSize,
		FetchWait:     c.FetchWait,
		PriorityGroup: DefaultPriorityGroup,
		PinnedTTL:     c.PinnedTTL,
		ReclaimHeld:   true,
		MaxBackoff:    c.MaxBackoff,
		ProgressEvery: c.ProgressEvery,
		DeadLetter:    projector.DeadLetterConfig{Stream: c.DLQStream, Replicas: c.DLQReplicas},
	}
}

// NewDriver returns a driver for the configured Neo4j (it does not connect yet).
func (c Config) NewDriver() (neo4j.DriverWithContext, error) {
	auth := neo4j.NoAuth()
	if c.Neo4jUser != "" {
		auth = neo4j.BasicAuth(c.Neo4jUser, c.Neo4jPassword, "")
	}
	d, err := neo4j.NewDriverWithContext(c.Neo4jURI, auth)
	if err != nil {
		return nil, fmt.Errorf("neo4jprojector: driver for %s: %w", c.Neo4jURI, err)
	}
	// The driver (v5.28.4) sets up its connector on the first connection without a lock, so two
	// first connections at once (the readiness check and the schema's creation) race. One
	// connection attempt now, before anything else uses the driver, does that set-up alone; its
	// outcome does not matter here (Neo4j being down at start is waited for).
	warm, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = d.VerifyConnectivity(warm)
	cancel()
	return d, nil
}

// Run connects to NATS and Neo4j, serves /healthz, /readyz and /metrics, creates the graph's
// constraints and indexes, optionally rebuilds the graph, and projects until ctx is done. Then
// readiness goes false, the batch in flight is finished, and the NATS connection is drained.
// Neo4j being unreachable at start is waited for (not ready meanwhile), not an error.
func Run(ctx context.Context, cfg Config, log zerolog.Logger) error {
	driver, err := cfg.NewDriver()
	if err != nil {
		return err
	}
	defer driver.Close(context.WithoutCancel(ctx))
	return servicemain.Serve(ctx, ServiceName, cfg.Common, log, func(_ context.Context, nc *nats.Conn, reg *prometheus.Registry) (*servicemain.Serving, error) {
		js, err := jetstream.New(nc)
		if err != nil {
			return nil, fmt.Errorf("neo4jprojector: jetstream: %w", err)
		}
		sink := NewSink(driver, SinkConfig{Name: ProjectorName, Database: cfg.Neo4jDatabase}, log)
		runner, err := projector.New(js, sink, cfg.RunnerConfig(), log, projector.NewMetrics(reg, ProjectorName))
		if err != nil {
			return nil, err
		}
		return &servicemain.Serving{
			Ready: map[string]ops.Check{"projector": runner.Ready, "neo4j": driver.VerifyConnectivity},
			Role:  func() string { return string(runner.Role()) },
			Work:  func(ctx context.Context) error { return project(ctx, cfg, driver, js, runner, log) },
		}, nil
	})
}

// project prepares the graph (schema, rebuild) and runs the runner until ctx is done.
func project(ctx context.Context, cfg Config, driver neo4j.DriverWithContext, js jetstream.JetStream, runner *projector.Runner, log zerolog.Logger) error {
	if err := untilDone(ctx, log, "create constraints and indexes", func() error {
		return EnsureSchema(ctx, driver, cfg.Neo4jDatabase)
	}); err != nil {
		return nil // ctx ended
	}
	if !cfg.Rebuild {
		return runner.Run(ctx)
	}
	err := runner.Rebuild(ctx, func(ctx context.Context) error {
		if err := untilDone(ctx, log, "empty the graph for the rebuild", func() error {
			return EmptyGraph(ctx, driver, cfg.Neo4jDatabase, ProjectorName)
		}); err != nil {
			return err
		}
		if s, err := js.Stream(ctx, cfg.Stream); err == nil {
			if info, err := s.Info(ctx); err == nil {
				log.Info().Uint64("events", info.State.Msgs).Uint64("last_seq", info.State.LastSeq).
					Msg("rebuild: graph emptied; replaying the whole stream")
			}
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("neo4jprojector: rebuild: %w", err)
	}
	return nil
}

// untilDone runs fn until it succeeds or ctx ends (the error then): every error is retried, with
// a capped backoff, as Neo4j may be down for a while.
func untilDone(ctx context.Context, log zerolog.Logger, what string, fn func() error) error {
	return retry.Do(ctx, retry.Policy{
		Backoff: retry.Backoff{Next: 200 * time.Millisecond, Max: 10 * time.Second},
		OnRetry: func(_ int, err error, pause time.Duration) {
			log.Warn().Err(err).Dur("retry_in", pause).Msg(what + " failed; retrying")
		},
	}, fn)
}
