package metricsprojector

import (
	"context"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/projector"
	"github.com/cim-infra/registry/internal/resourcestore"
)

// sink is the projector.Sink of the consumer phase. Its checkpoint is the state's sequence, moved
// with the state under one lock: a delivery at or below it (a redelivery, or an event the
// start-up replay already applied) is skipped, so no event counts twice.
type sink struct {
	m       *model
	applied func(n int) // tells the snapshotter how many events were applied

	// afterApply, if set, runs after a batch was applied and before Apply returns (tests: crash
	// or hold the projector between apply and acknowledgement).
	afterApply func(batch []projector.Delivery)
}

// Apply implements projector.Sink. It decodes every new delivery before it touches the state, so
// that a poison event leaves the batch unapplied as a whole (the runner dead-letters it and calls
// Apply again without it).
func (s *sink) Apply(_ context.Context, batch []projector.Delivery) error {
	s.m.mu.Lock()
	checkpoint := s.m.state.sequence
	s.m.mu.Unlock()

	events := make([]cr.Event, len(batch))
	for i, d := range batch {
		if d.Sequence <= checkpoint {
			continue
		}
		e, err := resourcestore.DecodeMsg(d.Header, d.Data)
		if err != nil {
			return projector.Poison(d.Sequence, err)
		}
		events[i] = e
	}

	n := 0
	s.m.mu.Lock()
	for i, d := range batch {
		// Only this goroutine writes the state, so the checkpoint read above still holds.
		if d.Sequence <= s.m.state.sequence {
			continue
		}
		s.m.state.Apply(d.Sequence, events[i])
		n++
	}
	s.m.mu.Unlock()
	if n > 0 && s.applied != nil {
		s.applied(n)
	}
	if s.afterApply != nil {
		s.afterApply(batch)
	}
	return nil
}

// Checkpoint implements projector.Sink: the sequence the figures stand for (the snapshot's and
// the replay's included).
func (s *sink) Checkpoint(context.Context) (uint64, error) {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	return s.m.state.sequence, nil
}
