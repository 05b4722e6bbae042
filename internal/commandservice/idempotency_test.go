package commandservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/testkit"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
)

// topology is a NATS system to run the idempotency tests on.
type topology struct {
	name     string
	replicas int
	url      func(t *testing.T) string
}

var topologies = []topology{
	{"R1", 1, func(t *testing.T) string { return natstest.RunServer(t).ClientURL() }},
	{"R3", 3, func(t *testing.T) string {
		return natstest.RunCluster(t, 3, natstest.SyncAlways()).ClientURL()
	}},
}

// TestRetryIdempotency re-sends commands with the same command id in every way a client can
// and checks that each gets the first result with Duplicate=true and that every command id has
// its events in the stream exactly once, on a single server and on an R3 cluster.
func TestRetryIdempotency(t *testing.T) {
	t.Parallel()
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			t.Parallel()
			url := topo.url(t)
			ctx := testCtx(t)
			st := testStore(t, url, topo.replicas)
			t.Run("resent after reply", func(t *testing.T) { testResent(t, ctx, url, st, topo.replicas) })
			t.Run("reply lost", func(t *testing.T) { testReplyLost(t, ctx, url, st, topo.replicas) })
			t.Run("instance died after append", func(t *testing.T) { testInstanceDied(t, ctx, url, st, topo.replicas) })
			t.Run("stale cache of another instance", func(t *testing.T) { testStaleInstance(t, ctx, url, st, topo.replicas) })
			t.Run("unchanged then state moved", func(t *testing.T) { testUnchangedRetry(t, ctx, url, st, topo.replicas) })
		})
	}
}

// testResent sends every kind of command twice with one command id.
func testResent(t *testing.T, ctx context.Context, url string, st *jetstore.Store, replicas int) {
	in := startInstance(t, url, withReplicas(replicas))
	defer func() { _ = in.svc.Shutdown(ctx) }()
	c := newClient(t, url)

	regID := newID()
	send := func(subject string, body any) api.CommandReply {
		t.Helper()
		var r api.CommandReply
		if err := c.Do(ctx, subject, body, &r); err != nil {
			t.Fatalf("%s: %v", subject, err)
		}
		return r
	}
	first := send(api.CommandSubject(api.CmdRegister), &api.Register{Envelope: api.Envelope{CommandID: regID}, Hostname: "h1", ResourceType: "vm"})
	id := first.AggregateID
	second := send(api.CommandSubject(api.CmdRegister), &api.Register{Envelope: api.Envelope{CommandID: regID}, Hostname: "h1", ResourceType: "vm"})
	if !second.Duplicate || second.AggregateID != id || mustJSON(t, second.Events) != mustJSON(t, first.Events) || second.Version != first.Version {
		t.Fatalf("re-sent register: %+v, first %+v", second, first)
	}

	cmds := []struct {
		subject string
		body    func(cmdID string) any
	}{
		{api.CommandSubject(api.CmdAssignOrganization), func(c string) any {
			return &api.AssignOrganization{Target: targetOf(c, id), OrganizationID: "5d1c8a1e-0000-4000-8000-000000000001"}
		}},
		{api.CommandSubject(api.CmdAddPolicy), func(c string) any {
			return &api.AddPolicy{Target: targetOf(c, id), PolicyID: "5d1c8a1e-0000-4000-8000-000000000002"}
		}},
		{api.CommandSubject(api.CmdUpdateMetadata), func(c string) any {
			return &api.UpdateMetadata{Target: targetOf(c, id), Key: "k", Value: "v"}
		}},
	}
	for _, cmd := range cmds {
		cmdID := newID()
		first := send(cmd.subject, cmd.body(cmdID))
		// Something else happens in between; the retry must still get the first result.
		send(api.CommandSubject(api.CmdAssignAssetTag), &api.AssignAssetTag{Target: targetOf(newID(), id), AssetTag: "T" + cmdID[:8]})
		again := send(cmd.subject, cmd.body(cmdID))
		if !again.Duplicate || again.Version != first.Version || mustJSON(t, again.Events) != mustJSON(t, first.Events) {
			t.Fatalf("%s re-sent: %+v, first %+v", cmd.subject, again, first)
		}
	}
	checkExactlyOnce(t, st, id)
}

func targetOf(commandID, id string) api.Target {
	return api.Target{Envelope: api.Envelope{CommandID: commandID}, AggregateID: id}
}

// testReplyLost publishes a command without a reply subject (its reply is lost for sure), waits
// until it is stored, and sends it again.
func testReplyLost(t *testing.T, ctx context.Context, url string, st *jetstore.Store, replicas int) {
	in := startInstance(t, url, withReplicas(replicas))
	defer func() { _ = in.svc.Shutdown(ctx) }()
	c := newClient(t, url)
	reg, err := c.Register(ctx, api.Register{Hostname: "h2", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	cmdID := newID()
	body, _ := json.Marshal(api.AssignOwner{Target: targetOf(cmdID, reg.AggregateID), OwnerID: newID()})
	if err := in.nc.Publish(api.CommandSubject(api.CmdAssignOwner), body); err != nil {
		t.Fatal(err)
	}
	var stored []jetstore.RecordedEvent
	testkit.WaitFor(t, ctx, "the command's events in the stream", func() bool {
		stored = eventsByCommand(eventsOf(t, st, reg.AggregateID))[cmdID]
		return len(stored) > 0
	})
	msg := rawRequest(t, in.nc, api.CommandSubject(api.CmdAssignOwner), body)
	var r api.CommandReply
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		t.Fatal(err)
	}
	if !r.Duplicate || len(r.Events) != 1 || r.Events[0].Sequence != stored[0].Sequence || r.Events[0].ID != stored[0].ID {
		t.Fatalf("retry after lost reply: %s, stored %+v", msg.Data, stored)
	}
	checkExactlyOnce(t, st, reg.AggregateID)
}

// testInstanceDied kills the instance (closes its connection) right after its append, before
// its reply; the client's request times out; the retry, handled by a new instance, gets the
// first result.
func testInstanceDied(t *testing.T, ctx context.Context, url string, st *jetstore.Store, replicas int) {
	c := newClient(t, url)
	setup := startInstance(t, url, withReplicas(replicas))
	reg, err := c.Register(ctx, api.Register{Hostname: "h3", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	_ = setup.svc.Shutdown(ctx)

	cmdID := uuid.New()
	var dyingConn atomic.Pointer[nats.Conn]
	died := make(chan struct{})
	dying := startInstance(t, url, withReplicas(replicas), withHooks(&testHooks{afterAppend: func(id uuid.UUID) {
		if id == cmdID {
			dyingConn.Load().Close()
			close(died)
		}
	}}))
	dyingConn.Store(dying.nc)
	cmd := api.AssignLocation{Target: targetOf(cmdID.String(), reg.AggregateID), LocationID: newID()}
	short := newClient(t, url, api.WithTimeout(2*time.Second), api.WithRetries(0))
	for {
		_, err = short.AssignLocation(ctx, cmd)
		if e := (*api.Error)(nil); !errors.As(err, &e) || e.Kind != api.KindNoResponders {
			break
		}
		time.Sleep(10 * time.Millisecond) // the instance's subscriptions are still on their way
	}
	if !api.Retryable(err) {
		t.Fatalf("request to a dying instance: %v, want a retryable error", err)
	}
	<-died
	stored := eventsByCommand(eventsOf(t, st, reg.AggregateID))[cmdID.String()]
	if len(stored) != 1 {
		t.Fatalf("the dying instance stored %d events", len(stored))
	}

	next := startInstance(t, url, withReplicas(replicas))
	defer func() { _ = next.svc.Shutdown(ctx) }()
	r, err := c.AssignLocation(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Duplicate || len(r.Events) != 1 || r.Events[0].ID != stored[0].ID || r.Version != stored[0].Sequence {
		t.Fatalf("retry: %+v, stored %+v", r, stored[0])
	}
	checkExactlyOnce(t, st, reg.AggregateID)
}

// testStaleInstance applies a command through one instance whose reply is dropped, while
// another instance holds the aggregate in its cache at the previous version; the retry reaches
// that other instance, which decides it on its stale state: the store must recognise the
// write (expected-sequence conflict on R1, Nats-Msg-Id duplicate on R3) and the reply must be
// the first result.
func testStaleInstance(t *testing.T, ctx context.Context, url string, st *jetstore.Store, replicas int) {
	writer := startInstance(t, url, withReplicas(replicas))
	_ = writer.svc.Shutdown(ctx) // its endpoints are gone; its internals still work
	stale := startInstance(t, url, withReplicas(replicas))
	defer func() { _ = stale.svc.Shutdown(ctx) }()
	c := newClient(t, url)
	reg, err := c.Register(ctx, api.Register{Hostname: "h4", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.MustParse(reg.AggregateID)
	if _, err := c.Get(ctx, api.Get{AggregateID: reg.AggregateID}); err != nil { // warm the cache
		t.Fatal(err)
	}

	cmdID := uuid.New()
	cmd := cr.AssignOrganization{Meta: cr.CommandMeta{CommandID: cmdID, Timestamp: time.Now()}, ID: id, OrganizationID: cr.OrganizationID(uuid.New())}
	first, err := writer.svc.execute(ctx, commandRequest{cmd: cmd, ownID: true, digest: requestDigest(cmd)}) // its reply never reaches the client
	if err != nil {
		t.Fatal(err)
	}
	hitsBefore := stale.counter(t, stale.svc.metrics.cacheHits)
	r, err := c.AssignOrganization(ctx, api.AssignOrganization{Target: targetOf(cmdID.String(), reg.AggregateID), OrganizationID: uuid.UUID(cmd.OrganizationID).String()})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Duplicate || r.Version != first.Version || mustJSON(t, r.Events) != mustJSON(t, first.Events) {
		t.Fatalf("retry on the stale instance: %+v, first %+v", r, first)
	}
	if stale.counter(t, stale.svc.metrics.cacheHits) != hitsBefore+1 {
		t.Fatal("the retry did not use the stale cached state")
	}
	checkExactlyOnce(t, st, reg.AggregateID)
}

// testUnchangedRetry: a command that changed nothing is re-sent after the state changed so that
// it would now write; the retry gets the first result (no events) and writes nothing, also on
// another instance.
func testUnchangedRetry(t *testing.T, ctx context.Context, url string, st *jetstore.Store, replicas int) {
	in := startInstance(t, url, withReplicas(replicas))
	c := newClient(t, url)
	reg, err := c.Register(ctx, api.Register{Hostname: "h5", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateMetadata(ctx, api.UpdateMetadata{Target: api.Target{AggregateID: reg.AggregateID}, Key: "env", Value: "prod"}); err != nil {
		t.Fatal(err)
	}
	noop := api.UpdateMetadata{Target: targetOf(newID(), reg.AggregateID), Key: "env", Value: "prod"}
	first, err := c.UpdateMetadata(ctx, noop)
	if err != nil || len(first.Events) != 0 || first.Duplicate {
		t.Fatalf("unchanged command: %+v, %v", first, err)
	}
	if _, err := c.UpdateMetadata(ctx, api.UpdateMetadata{Target: api.Target{AggregateID: reg.AggregateID}, Key: "env", Value: "test"}); err != nil {
		t.Fatal(err)
	}
	again, err := c.UpdateMetadata(ctx, noop)
	if err != nil || !again.Duplicate || len(again.Events) != 0 || again.Version != first.Version {
		t.Fatalf("retry on the same instance: %+v (%v), first %+v", again, err, first)
	}
	// Another instance, with a cold cache, answers the same from the results bucket.
	_ = in.svc.Shutdown(ctx)
	startInstance(t, url, withReplicas(replicas))
	again, err = c.UpdateMetadata(ctx, noop)
	if err != nil || !again.Duplicate || len(again.Events) != 0 || again.Version != first.Version {
		t.Fatalf("retry on another instance: %+v (%v), first %+v", again, err, first)
	}
	if n := len(eventsByCommand(eventsOf(t, st, reg.AggregateID))[noop.CommandID]); n != 0 {
		t.Fatalf("the unchanged command wrote %d events", n)
	}
	got, err := c.Get(ctx, api.Get{AggregateID: reg.AggregateID})
	if err != nil || got.Metadata["env"] != "test" {
		t.Fatalf("state after the retries: %+v, %v", got, err)
	}
}

// checkExactlyOnce checks that no command id's events were written twice: event ids are unique
// and every command id's events are contiguous in the aggregate's history.
func checkExactlyOnce(t testing.TB, st *jetstore.Store, id string) {
	t.Helper()
	events := eventsOf(t, st, id)
	seen := map[string]bool{}
	last := map[string]int{}
	for i, e := range events {
		if seen[e.ID] {
			t.Fatalf("event %s stored twice", e.ID)
		}
		seen[e.ID] = true
		if j, ok := last[e.CommandID]; ok && j != i-1 {
			t.Fatalf("command %s wrote at %d and again at %d", e.CommandID, events[j].Sequence, e.Sequence)
		}
		last[e.CommandID] = i
	}
}

// errString helps error messages about optional errors.
func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	var e *api.Error
	if errors.As(err, &e) {
		return fmt.Sprintf("%d %s", e.Code, e.Kind)
	}
	if errors.Is(err, nats.ErrTimeout) {
		return "timeout"
	}
	return err.Error()
}
