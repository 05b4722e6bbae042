package neo4jprojector

import (
	"testing"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/workload"
	"github.com/google/uuid"
)

// history is a random valid command history decided by the domain, the events it stored, and
// what the domain's fold says of them.
type history struct {
	gen    *workload.Generator
	states map[uuid.UUID]cr.State // decided states, for Decide
	stored map[uuid.UUID]uint64   // stream sequence of each resource's last event, for appends
	log    []SequencedEvent       // every event stored, in stream order
	last   uint64                 // stream sequence of the last message stored
	// skip holds the sequences of events the graph must not show (dead-lettered ones).
	skip map[uint64]bool
	// manual is true once an event was stored that the workload generator did not hand out.
	manual bool
}

// appendFunc stores one decision's events of a resource whose last event is at expected (0: new)
// and returns the stream sequence of the last one.
type appendFunc func(id uuid.UUID, expected uint64, events []cr.Event) uint64

func newHistory(seed uint64, resources int) *history {
	return &history{gen: workload.New(seed, resources), states: map[uuid.UUID]cr.State{},
		stored: map[uuid.UUID]uint64{}, skip: map[uint64]bool{}}
}

// run decides n more commands of the workload with computeresource.Decide against the current
// states and stores their events with store.
func (h *history) run(t testing.TB, n int, store appendFunc) {
	t.Helper()
	for range n {
		c := h.gen.Next()
		if c == nil {
			return
		}
		h.decide(t, c, store)
	}
}

// decide decides one command and stores its events; it returns the sequence of the last one.
func (h *history) decide(t testing.TB, c cr.Command, store appendFunc) uint64 {
	t.Helper()
	id := c.AggregateID()
	events, err := cr.Decide(h.states[id], c)
	if err != nil {
		t.Fatalf("command %s for %s was refused: %v", c.CommandName(), id, err)
	}
	if len(events) == 0 {
		return 0
	}
	last := store(id, h.stored[id], events)
	for i, e := range events {
		h.log = append(h.log, SequencedEvent{Sequence: last - uint64(len(events)-1-i), Event: e})
	}
	h.last = last
	h.stored[id] = last
	h.states[id] = cr.Fold(h.states[id], events...)
	return last
}

// want is the graph of the whole history (see wantAt), after checking, when the workload
// generator handed out every command, that the fold agrees with its own model (g.States()).
func (h *history) want(t testing.TB) graph {
	t.Helper()
	if !h.manual && len(h.skip) == 0 {
		model := h.gen.States()
		if len(model) != len(h.states) {
			t.Fatalf("workload model has %d resources, the fold %d", len(model), len(h.states))
		}
		for id, s := range h.states {
			if !s.Equal(model[id]) {
				t.Fatalf("fold of %s differs from the workload's model", id)
			}
		}
	}
	return h.wantAt(h.last)
}

// wantAt is the graph of the fold of the events up to seq, without the skipped ones, with the
// checkpoint at seq.
func (h *history) wantAt(seq uint64) graph {
	states := map[uuid.UUID]cr.State{}
	versions := map[uuid.UUID]uint64{}
	for _, ev := range h.log {
		if ev.Sequence > seq || h.skip[ev.Sequence] {
			continue
		}
		id := ev.Event.Meta().AggregateID
		states[id] = cr.Apply(states[id], ev.Event)
		versions[id] = ev.Sequence
	}
	return foldGraph(states, versions, seq)
}

// inMemory returns an appendFunc that numbers events as a stream would, and collects them.
func inMemory(out *[]SequencedEvent) appendFunc {
	return func(_ uuid.UUID, _ uint64, events []cr.Event) uint64 {
		for _, e := range events {
			*out = append(*out, SequencedEvent{Sequence: uint64(len(*out) + 1), Event: e})
		}
		return uint64(len(*out))
	}
}
