package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cim-infra/registry/internal/projector"
	"github.com/cim-infra/registry/internal/queryservice"
	"github.com/cim-infra/registry/pkg/api"
)

// runQuery fills a stream with a realistic history and measures the query service: building its
// model from nothing to the head against a raw ordered-consumer read of the same events
// (alternated), and a list answering a page of 100 rows against a core NATS request-reply
// carrying a reply of the same size (interleaved). The service answers on the fixed query
// subjects, so it runs on the embedded servers only: on a shared system another instance's
// queue group would take the requests.
func runQuery(ctx context.Context, e *env, res *ScenarioResult) error {
	if e.external() {
		return skipf("the query service answers on the fixed query subjects, shared with any instance on the system at -nats-url")
	}
	setup, err := e.singleStore(ctx, "query", jetstream.WithPublishAsyncMaxPending(e.sz.asyncWindow))
	if err != nil {
		return err
	}
	defer setup.release()
	js, st := setup.js, setup.st
	stream, prefix := st.Config().Stream, st.Config().SubjectPrefix

	n := e.sz.replayEvents
	head, err := fillHistory(ctx, js, st, 11, n)
	if err != nil {
		return err
	}

	opts := func() queryservice.Options {
		name, dlqPrefix := e.name("query")
		return queryservice.Options{
			Stream: stream, SubjectPrefix: prefix, NoSnapshots: true, ConsumerPrefix: name,
			DeadLetter: projector.DeadLetterConfig{Stream: name + "_DLQ", SubjectPrefix: dlqPrefix},
		}
	}
	build := func() (loadResult, error) {
		o := opts()
		defer dropStream(js, o.DeadLetter.Stream)
		svc, err := queryservice.New(setup.nc, o, zerolog.Nop(), prometheus.NewRegistry())
		if err != nil {
			return loadResult{}, err
		}
		wall, err := runUntil(ctx, svc.Run, func(ctx context.Context) (bool, error) { return svc.Ready(ctx) == nil, nil }, time.Millisecond)
		if err == nil && svc.Model().Sequence() < head {
			err = fmt.Errorf("ready at sequence %d, below the head %d", svc.Model().Sequence(), head)
		}
		return loadResult{ops: int(head), wall: wall, lat: &sample{}}, err
	}
	ordered := func() (loadResult, error) { return orderedRead(ctx, js, stream, "", int(head)) }
	built, raw, err := alternate(e.sz.rounds, build, ordered)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	f := rateFigure("query service: build the model from nothing to ready", built.rate(), "events/s", "raw ordered-consumer read", raw.rate())
	f.Note = fmt.Sprintf("%d events of %d resources, from Run to ready (dead-letter stream, consumer start, every event applied)", head, max(n/20, 10))
	res.Figures = append(res.Figures, f)
	res.Charts = append(res.Charts, Chart{File: "query-build.svg", Title: "Query service: model build rate (events/s)", YLabel: "events/s", Bars: true,
		Categories: []string{"build from nothing to ready"},
		Series:     []Series{{Name: "query service", Y: []float64{built.rate()}}, {Name: "raw ordered consumer", Y: []float64{raw.rate()}}}})

	list, err := queryList(ctx, e, setup.url, opts())
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	res.Figures = append(res.Figures, list)
	return nil
}

// queryList runs a query service and measures a list whose filter (hostname_prefix "host-0",
// about one resource in 16 of the workload's) returns a page of up to 100 rows, against a core
// NATS request-reply carrying the same reply.
func queryList(ctx context.Context, e *env, url string, o queryservice.Options) (Figure, error) {
	nc, err := e.connect(ctx, url)
	if err != nil {
		return Figure{}, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return Figure{}, err
	}
	defer dropStream(js, o.DeadLetter.Stream)
	svc, err := queryservice.New(nc, o, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		return Figure{}, err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	defer func() {
		stop()
		<-done
	}()
	client, err := e.connect(ctx, url)
	if err != nil {
		return Figure{}, err
	}
	defer client.Close()
	req, _ := json.Marshal(api.List{Filter: api.Filter{HostnamePrefix: "host-0"}, Limit: 100})
	var reply []byte
	var page api.ResourcePage
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		m, err := client.RequestWithContext(ctx, api.QuerySubject(api.QueryList), req)
		if err == nil && m.Header.Get(micro.ErrorCodeHeader) == "" {
			if err := json.Unmarshal(m.Data, &page); err != nil {
				return Figure{}, err
			}
			reply = m.Data
			break
		}
		if time.Since(start) > 10*time.Minute {
			return Figure{}, fmt.Errorf("no list reply within 10 minutes: %v", err)
		}
	}
	sub, err := nc.Subscribe("bench.query.floor", func(m *nats.Msg) { _ = m.Respond(reply) })
	if err != nil {
		return Figure{}, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.Flush(); err != nil {
		return Figure{}, err
	}
	// The build's garbage is collected now, not during the measurement (as in the query
	// service's BenchmarkListSelective): the figures are those of a service in its steady state.
	runtime.GC()
	listOp := func(int) error {
		m, err := client.RequestWithContext(ctx, api.QuerySubject(api.QueryList), req)
		if err == nil && m.Header.Get(micro.ErrorCodeHeader) != "" {
			err = fmt.Errorf("list: error reply %s", m.Data)
		}
		return err
	}
	floorOp := func(int) error {
		_, err := client.RequestWithContext(ctx, "bench.query.floor", req)
		return err
	}
	ls, fs, err := interleave(e.sz.reps, e.sz.budget, listOp, floorOp)
	if err != nil {
		return Figure{}, err
	}
	f := latencyFigure("query list: a page (limit 100) by hostname_prefix", ls, "core NATS request-reply, same reply size", fs)
	f.Note = fmt.Sprintf("%d of %d matches per page, %d-byte reply", len(page.Resources), page.Total, len(reply))
	return f, nil
}
