package commandservice

import (
	"context"
	"fmt"
	"time"

	"github.com/cim-infra/registry/internal/embedded"
	"github.com/cim-infra/registry/internal/ops"
	"github.com/cim-infra/registry/internal/servicemain"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Run runs the command service until ctx is done, then shuts it down gracefully
// (servicemain.Serve): readiness goes false, the micro service stops taking requests, requests
// in flight finish (within ShutdownTimeout), the NATS connection drains, and the embedded
// server, if any, stops last. With PrimeSnapshots or IndexKeys it runs that job instead, and
// returns once it is done.
//
// Without a NATS URL it starts an embedded JetStream server (cfg.Embedded) and connects to it
// in-process (nats.InProcessServer): no socket, and no system call, between the service and its
// server. A command crosses the server three times where a raw publish crosses it once, so the
// system calls of a socket are most of what a command costs beyond the publish; BenchmarkCommands
// measures both deployments (service=tcp, service=in-process; figures in BENCHMARKS.md).
// Projectors and clients connect to the server's TCP port as usual.
func Run(ctx context.Context, cfg Config, log zerolog.Logger) error {
	if err := cfg.Options.validate(); err != nil {
		return err
	}
	if cfg.NATS.URL == "" {
		emb, url, err := embedded.Start(ctx, cfg.Embedded, log)
		if err != nil {
			return err
		}
		log.Info().Str("url", url).Str("store_dir", cfg.Embedded.StoreDir).Str("sync", cfg.Embedded.Sync.String()).
			Msg("no -nats-url given: running an embedded NATS server; projectors and cimctl can connect to it at this url")
		cfg.NATS.URL = url
		cfg.NATS.InProcess = emb.NATSServer()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := emb.Shutdown(sctx); err != nil {
				log.Error().Err(err).Msg("stop embedded NATS server")
			}
		}()
	}
	switch {
	case cfg.PrimeSnapshots:
		return servicemain.RunOnce(ctx, ServiceName, cfg.Common, log, func(ctx context.Context, nc *nats.Conn) error { return prime(ctx, nc, cfg, log) })
	case cfg.IndexKeys:
		return servicemain.RunOnce(ctx, ServiceName, cfg.Common, log, func(ctx context.Context, nc *nats.Conn) error { return indexKeys(ctx, nc, cfg, log) })
	}
	return servicemain.Serve(ctx, ServiceName, cfg.Common, log, func(ctx context.Context, nc *nats.Conn, reg *prometheus.Registry) (*servicemain.Serving, error) {
		svc, err := New(ctx, nc, cfg.storeConfig(), cfg.Options, log, reg)
		if err != nil {
			return nil, err
		}
		return &servicemain.Serving{
			Ready: map[string]ops.Check{"stream": ops.StreamReachable(svc.JetStream(), svc.Store().Config().Stream)},
			Stop:  svc.Shutdown,
		}, nil
	})
}

// prime runs PrimeSnapshots with a log line per pass and per 100,000 events.
func prime(ctx context.Context, nc *nats.Conn, cfg Config, log zerolog.Logger) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("commandservice: jetstream: %w", err)
	}
	log.Info().Str("stream", cfg.Stream).Str("snapshot_bucket", cfg.SnapshotBucket).Int("max_aggregates", cfg.PrimeMaxAggregates).
		Msg("priming snapshots from the event stream")
	res, err := PrimeSnapshots(ctx, js, cfg.storeConfig(), PrimeOptions{
		Bucket: cfg.SnapshotBucket, MaxAggregates: cfg.PrimeMaxAggregates,
		Progress: func(p PrimeProgress) {
			log.Info().Int("pass", p.Pass).Int("passes", p.Passes).Int64("events_read", p.EventsRead).
				Uint64("stream_events", p.StreamEvents).Int64("snapshots_written", p.Written).Int64("too_large", p.TooLarge).Msg("priming snapshots")
		},
	})
	if err != nil {
		return err
	}
	log.Info().Int("passes", res.Passes).Int64("events_read", res.EventsRead).Int64("snapshots_written", res.Written).
		Int64("too_large", res.TooLarge).Dur("elapsed", res.Elapsed).Msg("snapshots primed")
	return nil
}

// indexKeys runs IndexKeys with a log line per key it could not claim. Keys it could not claim
// make it fail, so that its exit status says whether the operator has work to do.
func indexKeys(ctx context.Context, nc *nats.Conn, cfg Config, log zerolog.Logger) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("commandservice: jetstream: %w", err)
	}
	log.Info().Str("stream", cfg.Stream).Msg("claiming the keys of every live resource")
	res, err := IndexKeys(ctx, js, cfg.storeConfig())
	if err != nil {
		return err
	}
	for _, d := range res.Duplicates {
		log.Warn().Str("space", string(d.Key.Space)).Str("key", d.Key.Value).Stringers("resources", stringers(d.Resources)).
			Msg("duplicate: several live resources hold this key; claimed for none of them")
	}
	for _, d := range res.Conflicts {
		log.Warn().Str("space", string(d.Key.Space)).Str("key", d.Key.Value).Str("resource", d.Resources[0].String()).
			Str("holder", d.Resources[1].String()).Msg("duplicate: the key is claimed by another resource; not claimed")
	}
	log.Info().Int("claimed", res.Claimed).Int("already_held", res.Held).Int("duplicates", len(res.Duplicates)).
		Int("conflicts", len(res.Conflicts)).Msg("keys indexed")
	if n := len(res.Duplicates) + len(res.Conflicts); n > 0 {
		return fmt.Errorf("commandservice: index keys: %d keys held by several resources were not claimed (see the log)", n)
	}
	return nil
}

func stringers[T fmt.Stringer](v []T) []fmt.Stringer {
	out := make([]fmt.Stringer, len(v))
	for i := range v {
		out[i] = v[i]
	}
	return out
}
