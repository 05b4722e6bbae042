package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cim-infra/registry/pkg/jetstore"
)

// runReplicas measures the core figures (append, load, command round trip) on a single server,
// a 3-node cluster (R3) and a 3-node cluster that fsyncs every write (R3 sync always), each
// against raw JetStream on the same servers.
func runReplicas(ctx context.Context, e *env, res *ScenarioResult) error {
	var skipped []string
	chart := Chart{File: "replicas-latency.svg", Title: "Core figures by replication (p50, µs)", YLabel: "µs (log scale)", LogY: true, Bars: true,
		Series: []Series{{Name: "ours"}, {Name: "raw JetStream"}}}
	for _, kind := range e.sz.replicaKinds {
		figs, err := replicaFigures(ctx, e, kind)
		if errors.Is(err, errSkipped) {
			skipped = append(skipped, fmt.Sprintf("%s: %s", kind, strings.TrimPrefix(err.Error(), errSkipped.Error()+": ")))
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		res.Figures = append(res.Figures, figs...)
		for _, f := range figs {
			if f.Latency != nil {
				chart.Categories = append(chart.Categories, f.Name)
				chart.Series[0].Y = append(chart.Series[0].Y, f.Value)
				chart.Series[1].Y = append(chart.Series[1].Y, f.LimitValue)
			}
		}
	}
	if len(res.Figures) == 0 {
		return skipf("%s", strings.Join(skipped, "; "))
	}
	res.Skipped = strings.Join(skipped, "; ")
	res.Charts = append(res.Charts, chart)
	return nil
}

func replicaFigures(ctx context.Context, e *env, kind replication) ([]Figure, error) {
	t, err := e.target(kind)
	if err != nil {
		return nil, err
	}
	defer t.stop()
	nc, err := e.connect(ctx, t.url)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	st, err := newStore(ctx, e, js, "replicas", t.replicas)
	if err != nil {
		if e.external() && t.replicas > 1 {
			return nil, skipf("the server cannot hold an R%d stream (not a cluster of 3 or more JetStream nodes?): %v", t.replicas, err)
		}
		return nil, err
	}
	defer dropStream(js, st.Config().Stream)
	tag := " (" + string(kind) + ")"

	var figs []Figure
	app, err := appendFigures(ctx, e, st, js, 1, e.sz.reps/2)
	if err != nil {
		return nil, err
	}
	app[0].Name += tag
	figs = append(figs, app[0])

	agg := jetstore.AggregateRef{Type: "bench", ID: "load100"}
	if _, err := fill(ctx, st, agg, 100); err != nil {
		return nil, err
	}
	s, r, err := loadPair(ctx, e, st, js, agg, 100, e.sz.loadReps)
	if err != nil {
		return nil, err
	}
	f := latencyFigure("jetstore load, 100 events"+tag, s, "raw batch direct get", r)
	if t.replicas > 1 {
		f.Note = "on a replicated stream a load first asks the stream leader for the aggregate's last sequence (read-your-writes); the raw get does not"
	}
	figs = append(figs, f)

	b, err := startCommands(ctx, e, t, e.sz.replicaAggregates, commandHistory, e.sz.replicaAggregates*2, interleaved)
	if err != nil {
		return nil, err
	}
	defer b.close()
	if err := b.warm(ctx); err != nil {
		return nil, fmt.Errorf("warm the cache: %w", err)
	}
	for _, c := range e.sz.replicaConcurrency {
		cmd, raw, err := b.measure(ctx, e, c, e.sz.rounds)
		if err != nil {
			return nil, fmt.Errorf("commands, %d clients: %w", c, err)
		}
		what := fmt.Sprintf("command round trip, %d clients%s", c, tag)
		limit := fmt.Sprintf("raw publish w/ expected subject seq, %d publishers", c)
		figs = append(figs, rateFigure(what, cmd.rate(), "ops/s", limit, raw.rate()), latencyFigure(what, cmd.lat, limit, raw.lat))
	}
	return figs, nil
}
