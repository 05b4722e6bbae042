package commandservice

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/pkg/api"
)

// outcomeOf is what a client was finally told about one command id.
type outcomeOf struct {
	reply *api.CommandReply
	err   error
}

// TestInstancesShareAggregates runs three instances on one server and many clients sending
// conflicting commands, some of them twice, on a few aggregates. Every command ends with a
// definite reply (clients re-send on 503 with the same command id). Then the stream must hold,
// for every command id, exactly the events its success reply named, once, and nothing else.
func TestInstancesShareAggregates(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	url := srv.ClientURL()
	ctx := testCtx(t)
	var instances []*instance
	for range 3 {
		instances = append(instances, startInstance(t, url))
	}
	setup := newClient(t, url)
	const aggregates, clients, perClient = 4, 12, 40
	var ids []string
	for i := range aggregates {
		r, err := setup.Register(ctx, api.Register{Hostname: fmt.Sprintf("node-%d", i), ResourceType: "server"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.AggregateID)
		tg := api.Target{AggregateID: r.AggregateID}
		if _, err := setup.AssignOrganization(ctx, api.AssignOrganization{Target: tg, OrganizationID: newID()}); err != nil {
			t.Fatal(err)
		}
		if _, err := setup.AssignLocation(ctx, api.AssignLocation{Target: tg, LocationID: newID()}); err != nil {
			t.Fatal(err)
		}
	}
	policies := []string{newID(), newID(), newID()}
	owners := []string{newID(), newID()}

	var mu sync.Mutex
	outcomes := map[string]outcomeOf{}
	var wg sync.WaitGroup
	for n := range clients {
		wg.Go(func() {
			c := newClient(t, url)
			rng := rand.New(rand.NewPCG(uint64(n), 7))
			var prevSubject string
			var prevBody any
			for i := range perClient {
				subject, body := randomCommand(rng, ids, policies, owners, n, i)
				if prevBody != nil && rng.IntN(8) == 0 {
					subject, body = prevSubject, prevBody // a re-send of the previous command id
				}
				var r api.CommandReply
				err := c.Do(ctx, subject, body, &r)
				for api.Retryable(err) && ctx.Err() == nil {
					err = c.Do(ctx, subject, body, &r)
				}
				id := body.(interface{ commandID() string }).commandID()
				mu.Lock()
				if prev, ok := outcomes[id]; ok && prev.err == nil {
					// A re-send of a command that succeeded must repeat the first answer. (One that
					// was refused wrote nothing and is decided afresh.)
					if err != nil || !r.Duplicate || r.Version != prev.reply.Version || mustJSON(t, r.Events) != mustJSON(t, prev.reply.Events) {
						t.Errorf("re-sent %s: %+v / %s, first %+v", id, r, errString(err), prev.reply)
					}
				} else {
					outcomes[id] = outcomeOf{reply: &r, err: err}
				}
				mu.Unlock()
				prevSubject, prevBody = subject, body
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	st := testStore(t, url, 1)
	written := 0
	storedCommands := map[string]bool{}
	for _, id := range ids {
		checkExactlyOnce(t, st, id)
		stored := eventsOf(t, st, id)
		byCommand := eventsByCommand(stored)
		for cmdID, evs := range byCommand {
			storedCommands[cmdID] = true
			o, ok := outcomes[cmdID]
			if !ok {
				if len(stored) > 0 && evs[0].Sequence <= stored[2].Sequence {
					continue // the set-up's
				}
				t.Fatalf("events of command %s that no client sent", cmdID)
			}
			if o.err != nil {
				t.Fatalf("command %s was refused (%s) but wrote %d events", cmdID, errString(o.err), len(evs))
			}
			if len(o.reply.Events) != len(evs) || o.reply.AggregateID != id {
				t.Fatalf("command %s: reply %+v, stored %d events on %s", cmdID, o.reply, len(evs), id)
			}
			for i, e := range evs {
				ref := o.reply.Events[i]
				if ref.ID != e.ID || ref.Sequence != e.Sequence || ref.Type != e.Type {
					t.Fatalf("command %s: reply names %+v, stored %s %s at %d", cmdID, ref, e.Type, e.ID, e.Sequence)
				}
			}
			written++
		}
		// The state every instance serves is the fold of the stream.
		var want aggregate
		if err := want.apply(stored...); err != nil {
			t.Fatal(err)
		}
		for _, in := range instances {
			got, err := in.svc.current(ctx, mustUUID(t, id))
			if err != nil {
				t.Fatal(err)
			}
			if mustJSON(t, got) != mustJSON(t, api.ResourceOf(want.state, want.lastSeq)) {
				t.Fatalf("instance state of %s:\n %s\nwant %s", id, mustJSON(t, got), mustJSON(t, api.ResourceOf(want.state, want.lastSeq)))
			}
		}
	}
	// Every success that named events found them above; none is missing.
	successes, refused, conflicts := 0, 0, 0.0
	for cmdID, o := range outcomes {
		if o.err != nil {
			refused++
			continue
		}
		successes++
		if len(o.reply.Events) > 0 {
			if !storedCommands[cmdID] {
				t.Fatalf("command %s was acknowledged with events %+v that are not in the stream", cmdID, o.reply.Events)
			}
		}
	}
	for _, in := range instances {
		conflicts += in.counter(t, in.svc.metrics.conflicts)
	}
	t.Logf("%d commands: %d succeeded (%d wrote), %d refused; %v concurrency conflicts", len(outcomes), successes, written, refused, conflicts)
}

// A randomly chosen command; the request types embed their envelope, which commandID reads.
type (
	metadataReq struct{ api.UpdateMetadata }
	policyAdd   struct{ api.AddPolicy }
	policyDel   struct{ api.RemovePolicy }
	ownerReq    struct{ api.AssignOwner }
	statusReq   struct{ api.ChangeStatus }
)

func (r *metadataReq) commandID() string { return r.CommandID }
func (r *policyAdd) commandID() string   { return r.CommandID }
func (r *policyDel) commandID() string   { return r.CommandID }
func (r *ownerReq) commandID() string    { return r.CommandID }
func (r *statusReq) commandID() string   { return r.CommandID }

func randomCommand(rng *rand.Rand, ids, policies, owners []string, client, i int) (string, any) {
	cmdID := newID()
	tg := targetOf(cmdID, ids[rng.IntN(len(ids))])
	switch rng.IntN(5) {
	case 0:
		return api.CommandSubject(api.CmdAddPolicy), &policyAdd{api.AddPolicy{Target: tg, PolicyID: policies[rng.IntN(len(policies))]}}
	case 1:
		return api.CommandSubject(api.CmdRemovePolicy), &policyDel{api.RemovePolicy{Target: tg, PolicyID: policies[rng.IntN(len(policies))]}}
	case 2:
		return api.CommandSubject(api.CmdAssignOwner), &ownerReq{api.AssignOwner{Target: tg, OwnerID: owners[rng.IntN(len(owners))]}}
	case 3:
		status := []string{"active", "maintenance"}[rng.IntN(2)]
		return api.CommandSubject(api.CmdChangeStatus), &statusReq{api.ChangeStatus{Target: tg, Status: status}}
	default:
		return api.CommandSubject(api.CmdUpdateMetadata), &metadataReq{api.UpdateMetadata{Target: tg, Key: fmt.Sprintf("k%d", rng.IntN(3)), Value: fmt.Sprintf("c%d-%d", client, i)}}
	}
}
