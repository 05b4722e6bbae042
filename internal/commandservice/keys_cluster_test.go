package commandservice

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/internal/testkit"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
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

// Hostname and asset-tag contention on an R3 cluster while the stream leader restarts and an
// instance dies right after writing a batch with claims (before its reply): at the end no key is
// held by a decommissioned or unknown resource, no live key is held twice, each live resource
// holds its keys, and every key no live resource has is claimable.
func TestKeysUnderContentionAndFaults(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("an R3 cluster")
	}
	cluster := natstest.RunCluster(t, 3, natstest.SyncAlways())
	ctx := testCtx(t)
	hosts := []string{"a.example.com", "b.example.com", "c.example.com"}
	tags := []string{"T-1", "T-2", "T-3"}

	var mu sync.Mutex
	var ids []string // every resource a register was sent for
	clients := make([]*api.Client, len(cluster.Nodes))
	var dying *instance
	var killed sync.Once
	var fired atomic.Bool
	for i, n := range cluster.Nodes {
		var hooks *testHooks
		if i == 0 {
			hooks = &testHooks{afterAppend: func(uuid.UUID) { killed.Do(func() { fired.Store(true); dying.nc.Close() }) }}
		}
		in := startInstance(t, n.ClientURL(), withKeys(), withReplicas(3), withHooks(hooks))
		if i == 0 {
			dying = in
		} else {
			clients[i] = newClient(t, n.ClientURL())
		}
	}
	clients[0] = newClient(t, cluster.Nodes[0].ClientURL())

	const opsPerClient = 24
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for op := range opsPerClient {
				mu.Lock()
				var target string
				if len(ids) > 0 {
					target = ids[(c*7+op*5)%len(ids)]
				}
				mu.Unlock()
				var err error
				switch {
				case target == "" || op%3 == 0:
					id := uuid.NewString()
					mu.Lock()
					ids = append(ids, id)
					mu.Unlock()
					_, err = clients[c].Register(ctx, api.Register{AggregateID: id, Hostname: hosts[(c+op)%len(hosts)], ResourceType: "vm"})
				case op%3 == 1:
					_, err = clients[c].AssignAssetTag(ctx, api.AssignAssetTag{Target: api.Target{AggregateID: target}, AssetTag: tags[(c+op)%len(tags)]})
				default:
					_, err = clients[c].ChangeStatus(ctx, api.ChangeStatus{Target: api.Target{AggregateID: target}, Status: "decommissioned"})
				}
				var e *api.Error
				if err != nil && (!errors.As(err, &e) || e.Code == api.CodeInternal) {
					t.Errorf("client %d op %d: %v", c, op, err)
				}
			}
		}()
	}
	// The stream leader restarts while the clients work.
	st := keyStore(t, cluster.ClientURL(), 3)
	for range 2 {
		leader := streamLeader(t, cluster.ClientURL())
		n := cluster.Node(leader)
		n.Shutdown()
		n.Restart()
		cluster.WaitReady(t)
	}
	wg.Wait()
	if t.Failed() {
		return
	}

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
	live := map[cr.Key][]uuid.UUID{}
	for id, s := range states {
		for _, k := range cr.Keys(s) {
			live[k] = append(live[k], id)
		}
	}
	var keys []cr.Key
	for _, h := range hosts {
		keys = append(keys, cr.Key{Space: cr.KeySpaceHostname, Value: h})
	}
	for _, tag := range tags {
		keys = append(keys, cr.Key{Space: cr.KeySpaceAssetTag, Value: strings.ToLower(tag)})
	}
	c := clients[1]
	for _, k := range keys {
		switch holders := live[k]; len(holders) {
		case 0:
			wantHolder(t, st, k.Space, k.Value, "")
			// Claimable: a new resource takes it.
			id, host := uuid.NewString(), k.Value
			if k.Space == cr.KeySpaceAssetTag {
				host = "claim-" + id[:8] + ".example.com"
			}
			_, err := c.Register(ctx, api.Register{AggregateID: id, Hostname: host, ResourceType: "vm"})
			if err == nil && k.Space == cr.KeySpaceAssetTag {
				_, err = c.AssignAssetTag(ctx, api.AssignAssetTag{Target: api.Target{AggregateID: id}, AssetTag: k.Value})
			}
			if err != nil {
				t.Errorf("%s %q is free but not claimable: %v", k.Space, k.Value, err)
			}
		case 1:
			wantHolder(t, st, k.Space, k.Value, holders[0].String())
		default:
			t.Errorf("%s %q held by %d live resources: %v", k.Space, k.Value, len(holders), holders)
		}
	}
	if !fired.Load() {
		t.Error("no instance died after an append: the fault was not injected")
	}
}

// streamLeader returns the name of the event stream's leader.
func streamLeader(t testing.TB, url string) string {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	var leader string
	testkit.WaitFor(t, testCtx(t), "a leader of the event stream", func() bool {
		info, err := js.Stream(testCtx(t), jetstore.DefaultStream)
		if err == nil && info.CachedInfo().Cluster != nil {
			leader = info.CachedInfo().Cluster.Leader
		}
		return leader != ""
	})
	return leader
}
