package neo4jprojector

import (
	"testing"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/workload"
	"github.com/google/uuid"
)

// history is a random valid command history decided by the domain, and what the domain's fold
// says of it.
type history struct {
	gen      *workload.Generator
	states   map[uuid.UUID]cr.State
	versions map[uuid.UUID]uint64 // stream sequence of each resource's last event
	last     uint64               // stream sequence of the last event
}

// appendFunc stores one decision's events of a resource whose last event is at expected (0: new)
// and returns the stream sequence of the last one.
type appendFunc func(id uuid.UUID, expected uint64, events []cr.Event) uint64

func newHistory(seed uint64, resources int) *history {
	return &history{gen: workload.New(seed, resources), states: map[uuid.UUID]cr.State{}, versions: map[uuid.UUID]uint64{}}
}

// run decides n more commands with computeresource.Decide against the current states and
// stores their events with store.
func (h *history) run(t testing.TB, n int, store appendFunc) {
	t.Helper()
	for range n {
		c := h.gen.Next()
		if c == nil {
			return
		}
		id := c.AggregateID()
		events, err := cr.Decide(h.states[id], c)
		if err != nil {
			t.Fatalf("workload command %s for %s was refused: %v", c.CommandName(), id, err)
		}
		if len(events) == 0 {
			continue
		}
		h.last = store(id, h.versions[id], events)
		h.versions[id] = h.last
		h.states[id] = cr.Fold(h.states[id], events...)
	}
}

// want is the graph of the history's fold, after checking that the fold agrees with the
// workload generator's own model (g.States()).
func (h *history) want(t testing.TB) graph {
	t.Helper()
	model := h.gen.States()
	if len(model) != len(h.states) {
		t.Fatalf("workload model has %d resources, the fold %d", len(model), len(h.states))
	}
	for id, s := range h.states {
		if !s.Equal(model[id]) {
			t.Fatalf("fold of %s differs from the workload's model", id)
		}
	}
	return foldGraph(h.states, h.versions, h.last)
}

// inMemory returns an appendFunc that numbers events as a stream would, and collects them.
func inMemory(out *[]Envelope) appendFunc {
	return func(_ uuid.UUID, _ uint64, events []cr.Event) uint64 {
		for _, e := range events {
			*out = append(*out, Envelope{Sequence: uint64(len(*out) + 1), Event: e})
		}
		return uint64(len(*out))
	}
}
