package bench

import (
	"context"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cim-infra/registry/pkg/jetstore"
)

// growthEvents is the length of the aggregate loaded at every stream size.
const growthEvents = 100

// runGrowth loads a 100-event aggregate as one stream grows through the sizes, in two layouts,
// each against a raw batch direct get of the same subject: "contiguous", the aggregate appended
// as one batch at the end; "spread", its events spread evenly over the whole stream among other
// aggregates' events. The stream is filled with async publishes and measured at each size
// before it grows further, so every size has its own pair of aggregates.
func runGrowth(ctx context.Context, e *env, res *ScenarioResult) error {
	setup, err := e.singleStore(ctx, "growth", jetstream.WithPublishAsyncMaxPending(e.sz.asyncWindow))
	if err != nil {
		return err
	}
	defer setup.release()
	js, st := setup.js, setup.st
	prefix := st.Config().SubjectPrefix

	sizes := e.sz.growthSizes
	plan := spreadPlan(sizes)
	spread := func(k int) jetstore.AggregateRef {
		return jetstore.AggregateRef{Type: "bench", ID: fmt.Sprintf("spread%d", sizes[k])}
	}
	contiguous := func(k int) jetstore.AggregateRef {
		return jetstore.AggregateRef{Type: "bench", ID: fmt.Sprintf("contiguous%d", sizes[k])}
	}
	chart := Chart{File: "growth-load.svg", Title: "Load of one 100-event aggregate by stream size (p50)",
		XLabel: "messages in the stream (log scale)", YLabel: "µs (log scale)", LogX: true, LogY: true,
		Series: []Series{{Name: "jetstore, contiguous"}, {Name: "raw get, contiguous"}, {Name: "jetstore, spread"}, {Name: "raw get, spread"}}}

	pos := 0
	for k, size := range sizes {
		// Everything up to the contiguous block, then the block as one atomic append.
		from, to := pos, size-growthEvents
		err := publishAsync(ctx, js, to-from, func(i int) *nats.Msg {
			p := from + i
			agg := jetstore.AggregateRef{Type: "bench", ID: fmt.Sprintf("other%d", p%5000)}
			if a, ok := plan[p]; ok {
				agg = spread(a)
			}
			return eventMsg(prefix+".bench."+agg.ID, agg, fillerEvent(fmt.Sprintf("g-%d", p)))
		})
		if err != nil {
			return fmt.Errorf("fill to %d: %w", to, err)
		}
		if _, err := fill(ctx, st, contiguous(k), growthEvents); err != nil {
			return err
		}
		pos = size
		if last, err := st.LastSequence(ctx); err != nil || last != uint64(size) {
			return fmt.Errorf("stream holds %d messages, want %d (%v)", last, size, err)
		}

		for li, agg := range []jetstore.AggregateRef{contiguous(k), spread(k)} {
			s, r, err := loadPair(ctx, e, st, js, agg, growthEvents, e.sz.growthReps)
			if err != nil {
				return fmt.Errorf("stream of %d: %w", size, err)
			}
			layout := []string{"contiguous", "spread"}[li]
			res.Figures = append(res.Figures, latencyFigure(fmt.Sprintf("load 100 events, %s, stream of %d", layout, size),
				s, "raw batch direct get, same layout", r))
			chart.Series[2*li].X = append(chart.Series[2*li].X, float64(size))
			chart.Series[2*li].Y = append(chart.Series[2*li].Y, s.latency().P50)
			chart.Series[2*li+1].X = append(chart.Series[2*li+1].X, float64(size))
			chart.Series[2*li+1].Y = append(chart.Series[2*li+1].Y, r.latency().P50)
		}
	}
	res.Charts = append(res.Charts, chart)
	return nil
}

// spreadPlan places the events of one spread aggregate per size: event j of the aggregate of
// size S at position (j+0.5)·S/100 of the stream (0-based), moved down to the nearest position
// that is free and outside every contiguous block (the last 100 positions before each size).
// It maps a position to the index of its size.
func spreadPlan(sizes []int) map[int]int {
	plan := map[int]int{}
	inBlock := func(p int) bool {
		return slices.ContainsFunc(sizes, func(s int) bool { return p >= s-growthEvents && p < s })
	}
	for k, size := range sizes {
		for j := range growthEvents {
			p := int((float64(j) + 0.5) * float64(size) / growthEvents)
			for p > 0 && (inBlock(p) || hasKey(plan, p)) {
				p--
			}
			plan[p] = k
		}
	}
	return plan
}

func hasKey(m map[int]int, k int) bool {
	_, ok := m[k]
	return ok
}
