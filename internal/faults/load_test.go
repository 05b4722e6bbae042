package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/workload"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
)

// loadConfig shapes the clients' load.
type loadConfig struct {
	clients int
	hot     int // aggregates every client hammers with conflicting commands
	cold    int // aggregates that get the generator's valid histories
	// pace is the pause between two operations of a client (0: none).
	pace time.Duration
}

// record is one client operation with what the checks need beyond porcupine's view.
type record struct {
	Op
	CommandID string
	Reply     *api.CommandReply
	Err       error
}

// recorder collects every operation of a run.
type recorder struct {
	start time.Time
	// discard keeps nothing (a soak run would grow without bound); counts are still kept.
	discard bool
	counts  sync.Map // outcome -> *atomic.Int64
	mu      sync.Mutex
	ops     []record
	sent    map[string]bool // every command id a client sent
}

func newRecorder() *recorder { return &recorder{start: time.Now(), sent: map[string]bool{}} }

func (r *recorder) now() int64 { return time.Since(r.start).Nanoseconds() }

func (r *recorder) sending(commandID string) {
	if r.discard {
		return
	}
	r.mu.Lock()
	r.sent[commandID] = true
	r.mu.Unlock()
}

func (r *recorder) add(rec record) {
	n, _ := r.counts.LoadOrStore(rec.Output.Outcome, new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
	if r.discard {
		return
	}
	r.mu.Lock()
	r.ops = append(r.ops, rec)
	r.mu.Unlock()
}

// takeCounts returns and resets the count of operations per outcome.
func (r *recorder) takeCounts() map[string]int64 {
	out := map[string]int64{}
	r.counts.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Swap(0)
		return true
	})
	return out
}

func (r *recorder) records() []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]record(nil), r.ops...)
}

// load drives the command service with concurrent clients.
type load struct {
	cfg  loadConfig
	seed uint64
	url  string
	rec  *recorder
	hot  []uuid.UUID
	cold []uuid.UUID

	genMu sync.Mutex
	gen   *workload.Generator

	contended contended

	orgs     [2]cr.OrganizationID
	locs     [2]cr.LocationID
	policies [2]cr.PolicyID

	latencies *latencies
}

func newLoad(cfg loadConfig, seed uint64, url string, rec *recorder) *load {
	gen := workload.New(seed, cfg.hot+cfg.cold)
	gen.Now = time.Now // the service refuses a time further than -max-clock-skew from its clock
	l := &load{cfg: cfg, seed: seed, url: url, rec: rec, gen: gen, latencies: &latencies{}}
	l.gen.DecommissionWeight = 1
	ids := l.gen.IDs()
	l.hot, l.cold = ids[:cfg.hot], ids[cfg.hot:]
	rng := rand.New(rand.NewPCG(seed, 0xc0ffee))
	for i := range 2 {
		l.orgs[i] = cr.OrganizationID(randUUID(rng))
		l.locs[i] = cr.LocationID(randUUID(rng))
		l.policies[i] = cr.PolicyID(randUUID(rng))
	}
	return l
}

func randUUID(rng *rand.Rand) uuid.UUID {
	var u uuid.UUID
	for i := range u {
		u[i] = byte(rng.UintN(256))
	}
	u[6] = (u[6] & 0x0f) | 0x40
	u[8] = (u[8] & 0x3f) | 0x80
	return u
}

// client is one concurrent client with its own connection, random source and command ids.
type client struct {
	id  int
	l   *load
	rng *rand.Rand
	api *api.Client
}

func (l *load) newClient(t testing.TB, id int) *client {
	c, err := api.NewClient(natstest.Connect(t, l.url), api.WithTimeout(clientTimeout),
		api.WithRetries(clientRetries), api.WithRetryBackoff(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return &client{id: id, l: l, rng: rand.New(rand.NewPCG(l.seed, uint64(id)+1)), api: c}
}

// setup registers every aggregate and makes the hot ones active, one command at a time.
func (l *load) setup(ctx context.Context, t testing.TB) {
	t.Helper()
	c := l.newClient(t, 0)
	for _, id := range append(append([]uuid.UUID(nil), l.hot...), l.cold...) {
		rec := c.do(ctx, l.generated(id))
		if rec.Output.Outcome != OutcomeOK {
			t.Fatalf("setup: register %s: %s %v", id, rec.Output.Outcome, rec.Err)
		}
	}
	for _, id := range l.hot {
		for _, cmd := range []cr.Command{
			cr.AssignOrganization{Meta: c.meta(), ID: id, OrganizationID: l.orgs[0]},
			cr.AssignLocation{Meta: c.meta(), ID: id, LocationID: l.locs[0]},
			cr.ChangeStatus{Meta: c.meta(), ID: id, To: cr.StatusActive},
		} {
			if rec := c.do(ctx, cmd); rec.Output.Outcome != OutcomeOK {
				t.Fatalf("setup: %s on %s: %s %v", cmd.CommandName(), id, rec.Output.Outcome, rec.Err)
			}
		}
	}
}

// generated draws the generator's next valid command for id (nil once it is decommissioned).
func (l *load) generated(id uuid.UUID) cr.Command {
	l.genMu.Lock()
	defer l.genMu.Unlock()
	return l.gen.NextFor(id)
}

// run runs the clients until ctx ends.
func (l *load) run(ctx context.Context, t testing.TB) {
	var wg sync.WaitGroup
	for i := range l.cfg.clients {
		c := l.newClient(t, i+1)
		wg.Go(func() { c.loop(ctx) })
	}
	wg.Wait()
}

func (c *client) loop(ctx context.Context) {
	for ctx.Err() == nil {
		c.one(ctx)
		if c.l.cfg.pace > 0 {
			time.Sleep(c.l.cfg.pace)
		}
	}
}

// one sends one operation: a quarter of them contend for keys (contend); of the others, on a hot
// aggregate (half of them) a read, a conflicting command or a generated one; on a cold
// aggregate mostly generated commands.
func (c *client) one(ctx context.Context) {
	l := c.l
	if c.rng.IntN(4) == 0 {
		c.contend(ctx)
		return
	}
	if c.rng.IntN(2) == 0 {
		id := l.hot[c.rng.IntN(len(l.hot))]
		switch r := c.rng.IntN(10); {
		case r < 2:
			c.get(ctx, id)
		case r < 7:
			c.do(ctx, c.conflicting(id))
		default:
			if cmd := l.generated(id); cmd != nil {
				c.do(ctx, cmd)
			}
		}
		return
	}
	id := l.cold[c.rng.IntN(len(l.cold))]
	if c.rng.IntN(10) == 0 {
		c.get(ctx, id)
		return
	}
	if cmd := l.generated(id); cmd != nil {
		c.do(ctx, cmd)
	}
}

func (c *client) meta() cr.CommandMeta {
	id := randUUID(c.rng)
	return cr.CommandMeta{CommandID: id, CorrelationID: id, Timestamp: time.Now().UTC()}
}

// conflicting returns a command that races with the other clients' on the same aggregate:
// status changes back and forth, the same policy added and removed, assignments that may
// change nothing, and a second registration.
func (c *client) conflicting(id uuid.UUID) cr.Command {
	l, m := c.l, c.meta()
	switch c.rng.IntN(8) {
	case 0, 1:
		to := []cr.Status{cr.StatusActive, cr.StatusMaintenance, cr.StatusProvisioning}[c.rng.IntN(3)]
		return cr.ChangeStatus{Meta: m, ID: id, To: to}
	case 2:
		return cr.AddPolicy{Meta: m, ID: id, PolicyID: l.policies[c.rng.IntN(2)]}
	case 3:
		return cr.RemovePolicy{Meta: m, ID: id, PolicyID: l.policies[c.rng.IntN(2)]}
	case 4:
		return cr.AssignOrganization{Meta: m, ID: id, OrganizationID: l.orgs[c.rng.IntN(2)]}
	case 5:
		return cr.AssignLocation{Meta: m, ID: id, LocationID: l.locs[c.rng.IntN(2)]}
	case 6:
		return cr.UpdateMetadata{Meta: m, ID: id, Key: "owner-team", Value: []string{"a", "b"}[c.rng.IntN(2)]}
	default:
		h, _ := cr.ParseHostname(fmt.Sprintf("again-%d.example.com", c.rng.IntN(100)))
		return cr.RegisterResource{Meta: m, ID: id, Hostname: h, Type: cr.ResourceTypes()[0]}
	}
}

// do sends a command and records what came back.
func (c *client) do(ctx context.Context, cmd cr.Command) record {
	subject, body := workload.Request(cmd)
	rec := record{Op: Op{Client: c.id, Aggregate: cmd.AggregateID(), Input: Input{Command: cmd}},
		CommandID: cmd.Metadata().CommandID.String()}
	c.l.rec.sending(rec.CommandID)
	rec.Call = c.l.rec.now()
	var reply api.CommandReply
	err := c.api.Do(ctx, subject, envelopePtr(body), &reply)
	rec.Return = c.l.rec.now()
	c.l.latencies.add(time.Duration(rec.Return - rec.Call))
	rec.Err = err
	rec.Output = classify(err)
	if err == nil {
		rec.Reply = &reply
		rec.Output.Events = make([]string, len(reply.Events))
		for i, e := range reply.Events {
			rec.Output.Events[i] = e.Type
		}
	}
	if rec.Output.Outcome == OutcomeUnknown {
		rec.Return = Forever
	}
	c.l.rec.add(rec)
	return rec
}

// get reads an aggregate's current state and records it; a read without a definite answer
// is left out of the history (it changed nothing).
func (c *client) get(ctx context.Context, id uuid.UUID) {
	rec := record{Op: Op{Client: c.id, Aggregate: id}}
	rec.Call = c.l.rec.now()
	r, err := c.api.Get(ctx, api.Get{AggregateID: id.String()})
	rec.Return = c.l.rec.now()
	rec.Err = err
	var e *api.Error
	switch {
	case err == nil:
		rec.Output = Output{Outcome: OutcomeRead, State: ResourceDigest(ResourceFields{
			ID: r.ID, Hostname: r.Hostname, ResourceType: r.ResourceType, Status: r.Status,
			OrganizationID: r.OrganizationID, LocationID: r.LocationID, OwnerID: r.OwnerID,
			AccountConcept: r.AccountConceptID, Policies: r.Policies, Manufacturer: r.Manufacturer,
			Model: r.Model, SerialNumber: r.SerialNumber, AssetTag: r.AssetTag, Metadata: r.Metadata,
			CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		})}
	case errors.As(err, &e) && e.Code == api.CodeNotFound:
		rec.Output = Output{Outcome: OutcomeNotFound}
	default:
		return
	}
	c.l.rec.add(rec)
}

// envelopePtr makes the request body a pointer, as api.Client.Do wants for commands.
func envelopePtr(body any) any {
	switch b := body.(type) {
	case api.Register:
		return &b
	case api.AssignOrganization:
		return &b
	case api.AssignLocation:
		return &b
	case api.AssignOwner:
		return &b
	case api.AddPolicy:
		return &b
	case api.RemovePolicy:
		return &b
	case api.AssignAccountConcept:
		return &b
	case api.ClearAccountConcept:
		return &b
	case api.SetHardwareDetails:
		return &b
	case api.AssignAssetTag:
		return &b
	case api.UpdateMetadata:
		return &b
	case api.ChangeStatus:
		return &b
	}
	panic(fmt.Sprintf("no pointer for %T", body))
}

// classify turns a client's error into the outcome the model knows. A 400 or 500 for a valid
// command is a bug: it is recorded as unknown here and reported by the checks.
func classify(err error) Output {
	var e *api.Error
	switch {
	case err == nil:
		return Output{Outcome: OutcomeOK}
	case errors.As(err, &e) && e.Code == api.CodeConflict && e.Kind == "concurrency":
		return Output{Outcome: OutcomeConflict}
	case errors.As(err, &e) && (e.Code == api.CodeConflict || e.Code == api.CodeNotFound):
		return Output{Outcome: OutcomeRefused, Kind: e.Kind}
	default:
		return Output{Outcome: OutcomeUnknown}
	}
}

// latencies keeps every command's latency of a period.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// take returns and forgets the latencies recorded so far.
func (l *latencies) take() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.d
	l.d = nil
	return d
}
