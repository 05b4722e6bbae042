package faults

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/workload"
	"github.com/google/uuid"
)

// The soak's working set and pace of renewal. Every history ends, so that the services' memory
// (which holds each cached resource's whole history) has a steady state the soak can reach.
const (
	soakClients = 4
	soakHot     = 3
	soakCold    = 64
	// soakDecommission is the chance in percent that a status change of a cold resource
	// decommissions it: about one command in 24 ends a history.
	soakDecommission = 50
	// soakHotLife is how many operations a hot resource takes before a new one replaces it.
	soakHotLife = 500
)

// soakLoad is the soak's steady workload, on the fault suite's clients: half of the operations
// go to soakCold resources with valid histories from a workload generator that registers a new
// resource for each one it decommissions (workload.Generator.Renew), half to soakHot resources
// that every client hits with conflicting commands, each decommissioned and replaced by a new
// one after soakHotLife operations. One operation in ten of the first half and two of the
// second are reads.
type soakLoad struct {
	l     *load
	genMu sync.Mutex
	gen   *workload.Generator
	hot   [soakHot]hotSlot
}

// hotSlot is one hot resource and the operations it took.
type hotSlot struct {
	mu  sync.Mutex
	id  uuid.UUID
	ops atomic.Int64
}

func (h *hotSlot) current() uuid.UUID {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.id
}

func newSoakLoad(seed uint64, url string, rec *recorder) *soakLoad {
	gen := workload.New(seed, soakCold)
	gen.Now = time.Now // the service refuses a time further than -max-clock-skew from its clock
	s := &soakLoad{l: newLoad(loadConfig{clients: soakClients}, seed, url, rec), gen: gen}
	s.gen.DecommissionWeight = soakDecommission
	s.gen.Renew = true
	return s
}

// setup registers the hot resources and makes them active.
func (s *soakLoad) setup(ctx context.Context, t *testing.T) {
	t.Helper()
	c := s.l.newClient(t, 0)
	for i := range s.hot {
		id, err := s.newHot(ctx, c)
		if err != nil {
			t.Fatalf("setup: %v", err)
		}
		s.hot[i].id = id
	}
}

// newHot registers a resource, assigns it an organization and a location and activates it.
func (s *soakLoad) newHot(ctx context.Context, c *client) (uuid.UUID, error) {
	id := randUUID(c.rng)
	h, err := cr.ParseHostname(fmt.Sprintf("hot-%s.example.com", id.String()[:8]))
	if err != nil {
		return id, err
	}
	for _, cmd := range []cr.Command{
		cr.RegisterResource{Meta: c.meta(), ID: id, Hostname: h, Type: cr.ResourceTypes()[0]},
		cr.AssignOrganization{Meta: c.meta(), ID: id, OrganizationID: s.l.orgs[0]},
		cr.AssignLocation{Meta: c.meta(), ID: id, LocationID: s.l.locs[0]},
		cr.ChangeStatus{Meta: c.meta(), ID: id, To: cr.StatusActive},
	} {
		if rec := c.do(ctx, cmd); rec.Output.Outcome != OutcomeOK {
			return id, fmt.Errorf("%s on hot resource %s: %s %v", cmd.CommandName(), id, rec.Output.Outcome, rec.Err)
		}
	}
	return id, nil
}

// run runs the clients until ctx ends.
func (s *soakLoad) run(ctx context.Context, t *testing.T) {
	var wg sync.WaitGroup
	for i := range soakClients {
		c := s.l.newClient(t, i+1)
		wg.Go(func() {
			for ctx.Err() == nil {
				s.one(ctx, c)
			}
		})
	}
	wg.Wait()
}

func (s *soakLoad) one(ctx context.Context, c *client) {
	if c.rng.IntN(2) == 0 {
		slot := &s.hot[c.rng.IntN(soakHot)]
		id := slot.current()
		if c.rng.IntN(10) < 2 {
			c.get(ctx, id)
		} else {
			c.do(ctx, c.conflicting(id))
		}
		if slot.ops.Add(1) == soakHotLife {
			s.replaceHot(ctx, c, slot)
		}
		return
	}
	s.genMu.Lock()
	var cmd cr.Command
	var read uuid.UUID
	if c.rng.IntN(10) == 0 {
		ids := s.gen.IDs()
		read = ids[c.rng.IntN(len(ids))]
	} else {
		cmd = s.gen.Next()
	}
	s.genMu.Unlock()
	if cmd == nil {
		c.get(ctx, read)
		return
	}
	c.do(ctx, cmd)
}

// replaceHot puts a new active resource in the slot and decommissions the one it held. A
// failure (the load's end) leaves the slot as it was, to be replaced after its next
// soakHotLife operations.
func (s *soakLoad) replaceHot(ctx context.Context, c *client, slot *hotSlot) {
	fresh, err := s.newHot(ctx, c)
	slot.ops.Store(0)
	if err != nil {
		return
	}
	slot.mu.Lock()
	old := slot.id
	slot.id = fresh
	slot.mu.Unlock()
	c.do(ctx, cr.ChangeStatus{Meta: c.meta(), ID: old, To: cr.StatusDecommissioned})
}
