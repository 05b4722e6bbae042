package bench

import (
	"fmt"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/internal/workload"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
)

// history turns a workload generator's commands into the events the command service would store
// for them: real event types, payloads and headers, in a valid order.
type history struct {
	g      *workload.Generator
	states map[uuid.UUID]cr.State
	prefix string
	queue  []*nats.Msg
}

func newHistory(seed uint64, resources int, prefix string) *history {
	g := workload.New(seed, resources)
	g.Now = time.Now // its commands also go to the command service, which checks their time
	return &history{g: g, states: make(map[uuid.UUID]cr.State, resources), prefix: prefix}
}

// events decides c against the history's state of its resource and returns the stored events.
func (h *history) events(c cr.Command) ([]jetstore.Event, error) {
	id := c.AggregateID()
	evs, err := cr.Decide(h.states[id], c)
	if err != nil {
		return nil, fmt.Errorf("workload command %s on %s: %w", c.CommandName(), id, err)
	}
	h.states[id] = cr.Fold(h.states[id], evs...)
	return resourcestore.ToStore(evs)
}

// msg returns the next event message of the history (generating commands as needed), as
// jetstore would write it under prefix.
func (h *history) msg() (*nats.Msg, error) {
	for len(h.queue) == 0 {
		c := h.g.Next()
		if c == nil {
			return nil, fmt.Errorf("workload: every resource is decommissioned")
		}
		evs, err := h.events(c)
		if err != nil {
			return nil, err
		}
		ref := resourcestore.Ref(c.AggregateID())
		for _, e := range evs {
			h.queue = append(h.queue, eventMsg(h.prefix+"."+ref.Type+"."+ref.ID, ref, e))
		}
	}
	m := h.queue[0]
	h.queue = h.queue[1:]
	return m, nil
}
