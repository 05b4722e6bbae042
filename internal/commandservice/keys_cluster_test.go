package commandservice

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
)

// Three instances, each on its own server of an R3 cluster (sync always), and a client on each
// server (a queue group prefers the local subscriber): every round, the three register one
// hostname at once; exactly one succeeds and the others get hostname_taken naming it. Every
// other round the winner is decommissioned and the next round contends for the same hostname
// again. At the end, the fold of the whole stream has at most one live resource per hostname,
// and each hostname's claim is held by that one (or by nobody when none is live).
func TestConcurrentRegisterOfOneHostnameOnACluster(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("an R3 cluster")
	}
	cluster := natstest.RunCluster(t, 3, natstest.SyncAlways())
	ctx := testCtx(t)
	clients := make([]*api.Client, len(cluster.Nodes))
	for i, n := range cluster.Nodes {
		startInstance(t, n.ClientURL(), withKeys(), withReplicas(3))
		clients[i] = newClient(t, n.ClientURL())
	}
	const rounds = 16
	host := ""
	for round := range rounds {
		if round%2 == 0 {
			host = fmt.Sprintf("contended-%02d.example.com", round)
		}
		ids := make([]string, len(clients))
		errs := make([]error, len(clients))
		var wg sync.WaitGroup
		for i, c := range clients {
			ids[i] = uuid.NewString()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = c.Register(ctx, api.Register{AggregateID: ids[i], Hostname: host, ResourceType: "vm"})
			}()
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			if err == nil {
				if winner >= 0 {
					t.Fatalf("round %d: %s registered by %s and %s", round, host, ids[winner], ids[i])
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no register of %s succeeded: %v", round, host, errors.Join(errs...))
		}
		for i, err := range errs {
			if i == winner {
				continue
			}
			if e := wantError(t, err, api.CodeConflict, api.KindHostnameTaken); e.Details["holder_id"] != ids[winner] {
				t.Fatalf("round %d: hostname_taken names %v, want %s", round, e.Details["holder_id"], ids[winner])
			}
		}
		if round%2 == 0 {
			if _, err := clients[round%3].ChangeStatus(ctx, api.ChangeStatus{Target: api.Target{AggregateID: ids[winner]}, Status: "decommissioned"}); err != nil {
				t.Fatalf("round %d: decommission: %v", round, err)
			}
		}
	}

	// The fold of the whole stream.
	st := keyStore(t, cluster.ClientURL(), 3)
	states := map[uuid.UUID]cr.State{}
	if err := st.ReadAll(ctx, 1, func(rec jetstore.RecordedEvent) error {
		e, err := resourcestore.FromStore(rec)
		if err != nil {
			return err
		}
		states[e.Meta().AggregateID] = cr.Apply(states[e.Meta().AggregateID], e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	live := map[string][]uuid.UUID{}
	hosts := map[string]bool{}
	for id, s := range states {
		hosts[s.Hostname().String()] = true
		if s.Status() != cr.StatusDecommissioned {
			live[s.Hostname().String()] = append(live[s.Hostname().String()], id)
		}
	}
	if len(states) != rounds {
		t.Fatalf("%d resources in the stream, want %d (one per round)", len(states), rounds)
	}
	for h := range hosts {
		switch ids := live[h]; len(ids) {
		case 0:
			wantHolder(t, st, cr.KeySpaceHostname, h, "")
		case 1:
			wantHolder(t, st, cr.KeySpaceHostname, h, ids[0].String())
		default:
			t.Errorf("%s: %d live resources %v", h, len(ids), ids)
		}
	}
}
