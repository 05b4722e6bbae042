package bench

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/cim-infra/registry/pkg/jetstore"
)

// originalEventsPerSecond is the append rate of the implementation this registry replaces.
const originalEventsPerSecond = 167

// runStore measures jetstore against raw JetStream doing the same work on the same stream:
// appends against publishes with the same headers and expectation, loads against batch direct
// gets of the same messages.
func runStore(ctx context.Context, e *env, res *ScenarioResult) error {
	setup, err := e.singleStore(ctx, "store")
	if err != nil {
		return err
	}
	defer setup.release()
	js, st := setup.js, setup.st

	one, err := appendFigures(ctx, e, st, js, 1, e.sz.reps)
	if err != nil {
		return err
	}
	ten, err := appendFigures(ctx, e, st, js, 10, e.sz.reps/4)
	if err != nil {
		return err
	}
	res.Figures = append(res.Figures, one...)
	res.Figures = append(res.Figures, ten...)

	loads, lats, names, err := loadFigures(ctx, e, st, js, e.sz.loadReps, "")
	if err != nil {
		return err
	}
	res.Figures = append(res.Figures, loads...)
	res.Charts = append(res.Charts, percentileChart("store-latency.svg", "jetstore against raw JetStream: latency percentiles (µs)", names, lats))
	return nil
}

// appendFigures appends batches of size events n times to one aggregate, interleaved with the
// same messages published raw to another subject of the same stream: one sync publish with the
// expected last subject sequence for one event, an atomic batch with the expectation on its
// first message for more. It returns the latency figure and the sequential event rate.
func appendFigures(ctx context.Context, e *env, st *jetstore.Store, js jetstream.JetStream, size, n int) ([]Figure, error) {
	agg := jetstore.AggregateRef{Type: "bench", ID: fmt.Sprintf("append%d", size)}
	rawAgg := jetstore.AggregateRef{Type: "bench", ID: fmt.Sprintf("rawappend%d", size)}
	rawSubject, err := st.Subject(rawAgg)
	if err != nil {
		return nil, err
	}
	var last, rawLast uint64
	events := func(kind string, i int) []jetstore.Event {
		evs := make([]jetstore.Event, size)
		for j := range evs {
			evs[j] = fillerEvent(fmt.Sprintf("%s-%d-%d-%d", kind, size, i, j))
		}
		return evs
	}
	store := func(i int) error {
		r, err := st.Append(ctx, agg, last, events("s", i))
		last = r.LastSequence
		return err
	}
	raw := func(i int) error {
		evs := events("r", i)
		if size == 1 {
			ack, err := js.PublishMsg(ctx, eventMsg(rawSubject, rawAgg, evs[0]), jetstream.WithExpectLastSequencePerSubject(rawLast))
			if err != nil {
				return err
			}
			rawLast = ack.Sequence
			return nil
		}
		msgs := make([]*nats.Msg, size)
		for j := range evs {
			msgs[j] = eventMsg(rawSubject, rawAgg, evs[j])
		}
		msgs[0].Header.Set(jetstream.ExpectedLastSubjSeqHeader, fmt.Sprint(rawLast))
		ack, err := jetstreamext.PublishMsgBatch(ctx, js, msgs)
		if err != nil {
			return err
		}
		rawLast = ack.Sequence
		return nil
	}
	s, r, err := interleave(n, e.sz.budget, store, raw)
	if err != nil {
		return nil, fmt.Errorf("append %d: %w", size, err)
	}
	what, limit := "jetstore append, 1 event", "raw publish, expected subject sequence"
	if size > 1 {
		what = fmt.Sprintf("jetstore append, %d events (atomic)", size)
		limit = fmt.Sprintf("raw atomic batch of %d, expectation on first", size)
	}
	rate := func(s *sample) float64 { return float64(size) / s.mean().Seconds() }
	lat := latencyFigure(what, s, limit, r)
	rf := rateFigure(what+", sequential", rate(s), "events/s", limit, rate(r))
	rf.Note = fmt.Sprintf("%.0f× the original implementation's %d events/s", rate(s)/originalEventsPerSecond, originalEventsPerSecond)
	return []Figure{lat, rf}, nil
}

// loadFigures loads aggregates of 10, 100 and 1,000 events, interleaved with raw batch direct
// gets of the same messages, and reads the tail of the 100-event one with jetstore.After (a
// cached state: nothing new) against a raw get that finds nothing. suffix names the set-up.
func loadFigures(ctx context.Context, e *env, st *jetstore.Store, js jetstream.JetStream, reps int, suffix string) ([]Figure, []*Latency, []string, error) {
	var figs []Figure
	var lats []*Latency
	var names []string
	stream := st.Config().Stream
	var tailOf uint64
	var full100 *sample
	for _, size := range []int{10, 100, 1000} {
		agg := jetstore.AggregateRef{Type: "bench", ID: fmt.Sprintf("load%d", size)}
		last, err := fill(ctx, st, agg, size)
		if err != nil {
			return nil, nil, nil, err
		}
		s, r, err := loadPair(ctx, e, st, js, agg, size, reps)
		if err != nil {
			return nil, nil, nil, err
		}
		figs = append(figs, latencyFigure(fmt.Sprintf("jetstore load, %d events%s", size, suffix), s, "raw batch direct get", r))
		lats = append(lats, s.latency(), r.latency())
		names = append(names, fmt.Sprintf("load %d", size), fmt.Sprintf("raw get %d", size))
		if size == 100 {
			tailOf, full100 = last, s
		}
	}
	agg := jetstore.AggregateRef{Type: "bench", ID: "load100"}
	subject, _ := st.Subject(agg)
	s, r, err := interleave(reps, e.sz.budget,
		func(int) error {
			l, err := st.Load(ctx, agg, jetstore.After(tailOf))
			if err == nil && len(l.Events) != 0 {
				err = fmt.Errorf("tail read found %d events, want none", len(l.Events))
			}
			return err
		},
		func(int) error { return rawGet(ctx, js, stream, subject, tailOf+1, jetstore.DefaultPageSize, 0) })
	if err != nil {
		return nil, nil, nil, fmt.Errorf("tail read: %w", err)
	}
	f := latencyFigure("jetstore tail read (After last, nothing new)"+suffix, s, "raw batch direct get finding nothing", r)
	f.Note = fmt.Sprintf("a full load of the same 100 events takes %.0f µs (p50): the warm-cache read is %.1f× cheaper",
		full100.latency().P50, full100.latency().P50/f.Value)
	figs = append(figs, f)
	lats = append(lats, s.latency(), r.latency())
	names = append(names, "tail read", "raw empty get")
	return figs, lats, names, nil
}

// loadPair loads agg (of size events) reps times with jetstore, interleaved with raw batch
// direct gets of the same subject.
func loadPair(ctx context.Context, e *env, st *jetstore.Store, js jetstream.JetStream, agg jetstore.AggregateRef, size, reps int) (*sample, *sample, error) {
	subject, err := st.Subject(agg)
	if err != nil {
		return nil, nil, err
	}
	s, r, err := interleave(reps, e.sz.budget,
		func(int) error {
			l, err := st.Load(ctx, agg)
			if err == nil && len(l.Events) != size {
				err = fmt.Errorf("loaded %d events of %s, want %d", len(l.Events), agg, size)
			}
			return err
		},
		func(int) error {
			return rawGet(ctx, js, st.Config().Stream, subject, 1, jetstore.DefaultPageSize, size)
		})
	if err != nil {
		return nil, nil, fmt.Errorf("load %d events: %w", size, err)
	}
	return s, r, nil
}

// fill appends n events to agg in atomic batches of at most jetstore.MaxBatch and returns the
// aggregate's last sequence.
func fill(ctx context.Context, st *jetstore.Store, agg jetstore.AggregateRef, n int) (uint64, error) {
	var last uint64
	for done := 0; done < n; {
		k := min(jetstore.MaxBatch, n-done)
		evs := make([]jetstore.Event, k)
		for j := range evs {
			evs[j] = fillerEvent(fmt.Sprintf("%s-%s-%d", agg.Type, agg.ID, done+j))
		}
		res, err := st.Append(ctx, agg, last, evs)
		if err != nil {
			return 0, fmt.Errorf("fill %s: %w", agg, err)
		}
		last, done = res.LastSequence, done+k
	}
	return last, nil
}
