package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cim-infra/registry/internal/metricsprojector"
	"github.com/cim-infra/registry/internal/projector"
	"github.com/cim-infra/registry/pkg/jetstore"
)

// runReplay fills a stream with a realistic history (the workload's commands decided by the
// domain, stored as the command service stores them) and measures how fast each projector
// brings a read model from nothing to the head of the stream, against a raw ordered-consumer
// read of the same events, alternated with it.
func runReplay(ctx context.Context, e *env, res *ScenarioResult) error {
	setup, err := e.singleStore(ctx, "replay", jetstream.WithPublishAsyncMaxPending(e.sz.asyncWindow))
	if err != nil {
		return err
	}
	defer setup.release()
	js, st := setup.js, setup.st
	stream, prefix := st.Config().Stream, st.Config().SubjectPrefix

	n := e.sz.replayEvents
	head, err := fillHistory(ctx, js, st, 7, n)
	if err != nil {
		return err
	}

	ordered := func() (loadResult, error) { return orderedRead(ctx, js, stream, "", n) }
	metrics := func() (loadResult, error) { return replayMetrics(ctx, e, js, stream, prefix, head) }
	readAll := func() (loadResult, error) {
		start := time.Now()
		var got int
		err := st.ReadAll(ctx, 1, func(jetstore.RecordedEvent) error { got++; return nil })
		if err == nil && got != n {
			err = fmt.Errorf("ReadAll read %d events, want %d", got, n)
		}
		return loadResult{ops: got, wall: time.Since(start), lat: &sample{}}, err
	}

	mp, raw1, err := alternate(e.sz.rounds, metrics, ordered)
	if err != nil {
		return fmt.Errorf("metrics projector: %w", err)
	}
	f := rateFigure("metrics projector: replay from nothing to the head", mp.rate(), "events/s", "raw ordered-consumer read", raw1.rate())
	f.Note = fmt.Sprintf("%d events, from Run to figures at the head (snapshot bucket, replay by batch direct get, consumer start)", n)
	res.Figures = append(res.Figures, f)

	ra, raw2, err := alternate(e.sz.rounds, readAll, ordered)
	if err != nil {
		return fmt.Errorf("read all: %w", err)
	}
	res.Figures = append(res.Figures, rateFigure("jetstore ReadAll (batch direct get, decode, upcast)", ra.rate(), "events/s", "raw ordered-consumer read", raw2.rate()))

	chart := Chart{File: "replay-rates.svg", Title: "Replay rates (events/s)", YLabel: "events/s", Bars: true,
		Categories: []string{"metrics projector", "jetstore ReadAll"},
		Series:     []Series{{Name: "ours", Y: []float64{mp.rate(), ra.rate()}}, {Name: "raw ordered consumer", Y: []float64{raw1.rate(), raw2.rate()}}}}

	graph, skipped, err := replayNeo4j(ctx, e, js, stream, prefix, head, ordered)
	switch {
	case err != nil:
		return fmt.Errorf("neo4j projector: %w", err)
	case skipped != "":
		res.Skipped = skipped
	default:
		res.Figures = append(res.Figures, graph...)
		chart.Categories = append(chart.Categories, "neo4j projector")
		chart.Series[0].Y = append(chart.Series[0].Y, graph[0].Value)
		chart.Series[1].Y = append(chart.Series[1].Y, graph[0].LimitValue)
	}
	res.Charts = append(res.Charts, chart)
	return nil
}

// replayMetrics runs a fresh metrics projector (its own consumer, snapshot bucket and
// dead-letter stream) on the stream and measures from Run until its figures stand for head.
func replayMetrics(ctx context.Context, e *env, js jetstream.JetStream, stream, prefix string, head uint64) (loadResult, error) {
	name, dlqPrefix := e.name("metrics")
	p, err := metricsprojector.New(js, metricsprojector.Options{
		Name:          name,
		Stream:        stream,
		SubjectPrefix: prefix,
		Bucket:        name,
		DeadLetter:    projector.DeadLetterConfig{Stream: name + "_DLQ", SubjectPrefix: dlqPrefix},
	}, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		return loadResult{}, err
	}
	defer func() {
		dropStream(js, name+"_DLQ")
		_ = js.DeleteObjectStore(context.Background(), name)
	}()
	wall, err := runUntil(ctx, p.Run, func(context.Context) (bool, error) { return p.Sequence() >= head, nil }, time.Millisecond)
	if err != nil {
		return loadResult{}, err
	}
	return loadResult{ops: int(head), wall: wall, lat: &sample{}}, nil
}

// runUntil starts run, polls reached every interval until it reports true, then stops run and
// returns the time from the start to the first true. It fails if run stops first, if reached
// fails, or after ten minutes.
func runUntil(ctx context.Context, run func(context.Context) error, reached func(context.Context) (bool, error), interval time.Duration) (time.Duration, error) {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var runErr error
	stopped := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(stopped)
		runErr = run(runCtx)
	}()
	wall, err := waitFor(ctx, stopped, func() (bool, error) { return reached(ctx) }, interval, start)
	cancel()
	<-stopped
	if err != nil {
		if runErr != nil {
			err = fmt.Errorf("%w (run: %v)", err, runErr)
		}
		return 0, err
	}
	return wall, nil
}

// waitFor polls reached every interval until it reports true and returns the time since start;
// it fails if stopped is closed first, reached fails, or ten minutes pass.
func waitFor(ctx context.Context, stopped <-chan struct{}, reached func() (bool, error), interval time.Duration, start time.Time) (time.Duration, error) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	limit := time.After(10 * time.Minute)
	for {
		ok, err := reached()
		if err != nil {
			return 0, err
		}
		if ok {
			return time.Since(start), nil
		}
		select {
		case <-stopped:
			return 0, fmt.Errorf("stopped before reaching the head")
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-limit:
			return 0, fmt.Errorf("did not reach the head within 10 minutes")
		case <-tick.C:
		}
	}
}

// fillHistory publishes n events of a realistic history (seed, n/20 resources) on st's stream,
// as the command service stores them, and returns the stream's head: the n-th event.
func fillHistory(ctx context.Context, js jetstream.JetStream, st *jetstore.Store, seed uint64, n int) (uint64, error) {
	h := newHistory(seed, max(n/20, 10), st.Config().SubjectPrefix)
	var genErr error
	if err := publishAsync(ctx, js, n, func(int) *nats.Msg {
		m, err := h.msg()
		if err != nil && genErr == nil {
			genErr = err
		}
		return m
	}); err != nil {
		return 0, fmt.Errorf("fill: %w", err)
	}
	if genErr != nil {
		return 0, genErr
	}
	head, err := st.LastSequence(ctx)
	if err != nil {
		return 0, err
	}
	if head != uint64(n) {
		return 0, fmt.Errorf("stream holds %d events, want %d", head, n)
	}
	return head, nil
}
