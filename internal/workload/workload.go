// Package workload generates random but valid command histories over many resources,
// deterministically from a seed. Tests, benchmarks and fault-injection runs use it to drive the
// real services, and compare what they built against the domain's own fold of the same history.
package workload

import (
	"fmt"
	"math/rand/v2"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
)

// Generator produces commands that are valid for its own model of every resource's state: it
// decides each command it hands out and applies the events to its model, so the commands form
// one valid history if they are applied in the order given.
type Generator struct {
	rng    *rand.Rand
	ids    []uuid.UUID
	states map[uuid.UUID]cr.State
	clock  time.Time
	orgs   []cr.OrganizationID
	locs   []cr.LocationID
	people []cr.PersonID
	pols   []cr.PolicyID
	cons   []cr.AccountConceptID
	// DecommissionWeight is the chance in percent that a status change decommissions the
	// resource (default 2), so that histories stay long but decommissioned resources occur.
	DecommissionWeight int
	// Renew keeps the working set steady for long runs: a resource decommissioned by a command
	// the generator handed out is forgotten at once, and a new resource id takes its place
	// among those it draws from (its registration is then among the next commands). So Next
	// never returns nil, the generator's memory stays bounded, and every history ends.
	Renew bool
	// Now, when set, stamps the commands in place of the generator's synthetic clock, which
	// starts on 2026-01-01 and moves up to an hour a command: the command service refuses a
	// timestamp further than its -max-clock-skew from its own clock, so commands sent to it take
	// the time they are made (time.Now). The commands are otherwise the same for one seed.
	Now func() time.Time
	// index maps each id of ids to its position, for Renew.
	index map[uuid.UUID]int
}

// New returns a generator over `resources` resources, with small pools of organizations,
// locations, owners, policies and account concepts shared between them (so that graph read
// models have nodes with many relationships).
func New(seed uint64, resources int) *Generator {
	g := &Generator{
		rng:                rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		states:             make(map[uuid.UUID]cr.State, resources),
		clock:              time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		DecommissionWeight: 2,
	}
	for range resources {
		g.ids = append(g.ids, g.uuid())
	}
	for range 5 {
		g.orgs = append(g.orgs, cr.OrganizationID(g.uuid()))
		g.locs = append(g.locs, cr.LocationID(g.uuid()))
		g.people = append(g.people, cr.PersonID(g.uuid()))
		g.pols = append(g.pols, cr.PolicyID(g.uuid()))
		g.cons = append(g.cons, cr.AccountConceptID(g.uuid()))
	}
	return g
}

func (g *Generator) uuid() uuid.UUID {
	var b [16]byte
	for i := range b {
		b[i] = byte(g.rng.UintN(256))
	}
	u, _ := uuid.FromBytes(b[:])
	u[6] = (u[6] & 0x0f) | 0x40 // version 4
	u[8] = (u[8] & 0x3f) | 0x80 // RFC 4122 variant
	return u
}

// IDs returns the resource ids the generator draws from.
func (g *Generator) IDs() []uuid.UUID { return append([]uuid.UUID(nil), g.ids...) }

// State returns the generator's model of a resource after every command it handed out.
func (g *Generator) State(id uuid.UUID) cr.State { return g.states[id] }

// States returns the model of every resource that was registered.
func (g *Generator) States() map[uuid.UUID]cr.State {
	out := make(map[uuid.UUID]cr.State, len(g.states))
	for id, s := range g.states {
		if s.Registered() {
			out[id] = s
		}
	}
	return out
}

// Next returns the next command of the history, for a resource chosen at random among those
// that can still take commands. It returns nil when every resource is decommissioned.
func (g *Generator) Next() cr.Command {
	for range 4 * len(g.ids) {
		id := g.ids[g.rng.IntN(len(g.ids))]
		if c := g.NextFor(id); c != nil {
			return c
		}
	}
	for _, id := range g.ids {
		if c := g.NextFor(id); c != nil {
			return c
		}
	}
	return nil
}

// NextFor returns a command for one resource that its current state accepts and that changes
// it, or nil if the resource is decommissioned.
func (g *Generator) NextFor(id uuid.UUID) cr.Command {
	s := g.states[id]
	if s.Registered() && s.Status() == cr.StatusDecommissioned {
		return nil
	}
	for range 64 {
		c := g.candidate(id, s)
		evs, err := cr.Decide(s, c)
		if err != nil || len(evs) == 0 {
			continue
		}
		next := cr.Fold(s, evs...)
		g.states[id] = next
		if g.Renew && next.Status() == cr.StatusDecommissioned {
			g.replace(id)
		}
		return c
	}
	panic(fmt.Sprintf("workload: no valid command found for resource %s in state %v", id, s.Status()))
}

// replace forgets a resource and puts a new id in its place among those drawn from.
func (g *Generator) replace(id uuid.UUID) {
	if g.index == nil {
		g.index = make(map[uuid.UUID]int, len(g.ids))
		for i, id := range g.ids {
			g.index[id] = i
		}
	}
	i, ok := g.index[id]
	if !ok {
		return
	}
	fresh := g.uuid()
	g.ids[i] = fresh
	delete(g.index, id)
	g.index[fresh] = i
	delete(g.states, id)
}

func (g *Generator) meta() cr.CommandMeta {
	g.clock = g.clock.Add(time.Duration(1+g.rng.IntN(3600)) * time.Second)
	id := g.uuid()
	ts := g.clock
	if g.Now != nil {
		ts = g.Now().UTC()
	}
	return cr.CommandMeta{CommandID: id, CorrelationID: id, Timestamp: ts}
}

func pick[T any](g *Generator, xs []T) T { return xs[g.rng.IntN(len(xs))] }

func (g *Generator) candidate(id uuid.UUID, s cr.State) cr.Command {
	m := g.meta()
	if !s.Registered() {
		types := cr.ResourceTypes()
		h, err := cr.ParseHostname(fmt.Sprintf("host-%s.dc%d.example.com", id.String()[:8], g.rng.IntN(4)))
		if err != nil {
			panic(err)
		}
		return cr.RegisterResource{Meta: m, ID: id, Hostname: h, Type: types[g.rng.IntN(len(types))]}
	}
	switch g.rng.IntN(12) {
	case 0:
		return cr.AssignOrganization{Meta: m, ID: id, OrganizationID: pick(g, g.orgs)}
	case 1:
		return cr.AssignLocation{Meta: m, ID: id, LocationID: pick(g, g.locs)}
	case 2:
		return cr.AssignOwner{Meta: m, ID: id, OwnerID: pick(g, g.people)}
	case 3:
		return cr.AddPolicy{Meta: m, ID: id, PolicyID: pick(g, g.pols)}
	case 4:
		if ps := s.Policies(); len(ps) > 0 {
			return cr.RemovePolicy{Meta: m, ID: id, PolicyID: pick(g, ps)}
		}
		return cr.AddPolicy{Meta: m, ID: id, PolicyID: pick(g, g.pols)}
	case 5:
		return cr.AssignAccountConcept{Meta: m, ID: id, ConceptID: pick(g, g.cons)}
	case 6:
		return cr.ClearAccountConcept{Meta: m, ID: id}
	case 7:
		man, model, serial := pick(g, []string{"Dell", "HPE", "Lenovo", "Supermicro"}),
			fmt.Sprintf("R%d", 600+g.rng.IntN(400)), fmt.Sprintf("SN%08d", g.rng.IntN(1e8))
		c := cr.SetHardwareDetails{Meta: m, ID: id, Manufacturer: &man}
		if g.rng.IntN(2) == 0 {
			c.Model = &model
		}
		if g.rng.IntN(2) == 0 {
			c.SerialNumber = &serial
		}
		return c
	case 8:
		return cr.AssignAssetTag{Meta: m, ID: id, AssetTag: fmt.Sprintf("AT-%06d", g.rng.IntN(1e6))}
	case 9:
		return cr.UpdateMetadata{Meta: m, ID: id, Key: pick(g, []string{"rack", "env", "team", "os/version"}),
			Value: fmt.Sprintf("v%d", g.rng.IntN(50))}
	default:
		return cr.ChangeStatus{Meta: m, ID: id, To: g.nextStatus(s)}
	}
}

func (g *Generator) nextStatus(s cr.State) cr.Status {
	if g.rng.IntN(100) < g.DecommissionWeight {
		return cr.StatusDecommissioned
	}
	switch s.Status() {
	case cr.StatusProvisioning, cr.StatusMaintenance:
		return cr.StatusActive
	default:
		return cr.StatusMaintenance
	}
}

// Request renders a command as the command service's wire request: its subject and JSON body.
func Request(c cr.Command) (subject string, body any) {
	m := c.Metadata()
	ts := m.Timestamp
	env := api.Envelope{CommandID: m.CommandID.String(), Timestamp: &ts}
	if m.CorrelationID != uuid.Nil {
		env.CorrelationID = m.CorrelationID.String()
	}
	if m.CausationID != uuid.Nil {
		env.CausationID = m.CausationID.String()
	}
	t := api.Target{Envelope: env, AggregateID: c.AggregateID().String()}
	subject = api.CommandSubject(c.CommandName())
	switch c := c.(type) {
	case cr.RegisterResource:
		return subject, api.Register{Envelope: env, AggregateID: c.ID.String(), Hostname: c.Hostname.String(), ResourceType: c.Type.String()}
	case cr.AssignOrganization:
		return subject, api.AssignOrganization{Target: t, OrganizationID: uuid.UUID(c.OrganizationID).String()}
	case cr.AssignLocation:
		return subject, api.AssignLocation{Target: t, LocationID: uuid.UUID(c.LocationID).String()}
	case cr.AssignOwner:
		return subject, api.AssignOwner{Target: t, OwnerID: uuid.UUID(c.OwnerID).String()}
	case cr.AddPolicy:
		return subject, api.AddPolicy{Target: t, PolicyID: uuid.UUID(c.PolicyID).String()}
	case cr.RemovePolicy:
		return subject, api.RemovePolicy{Target: t, PolicyID: uuid.UUID(c.PolicyID).String()}
	case cr.AssignAccountConcept:
		return subject, api.AssignAccountConcept{Target: t, ConceptID: uuid.UUID(c.ConceptID).String()}
	case cr.ClearAccountConcept:
		return subject, api.ClearAccountConcept{Target: t}
	case cr.SetHardwareDetails:
		return subject, api.SetHardwareDetails{Target: t, Manufacturer: c.Manufacturer, Model: c.Model, SerialNumber: c.SerialNumber}
	case cr.AssignAssetTag:
		return subject, api.AssignAssetTag{Target: t, AssetTag: c.AssetTag}
	case cr.UpdateMetadata:
		return subject, api.UpdateMetadata{Target: t, Key: c.Key, Value: c.Value}
	case cr.ChangeStatus:
		return subject, api.ChangeStatus{Target: t, Status: c.To.String()}
	}
	panic(fmt.Sprintf("workload: no request for command %T", c))
}
