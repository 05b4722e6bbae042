package commandservice

import (
	"testing"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// withKeys turns on unique hostnames and asset tags, as the service's default configuration.
func withKeys() instanceOption {
	return func(_ *Options, sc *jetstore.Config) { sc.KeyPrefix = jetstore.DefaultKeyPrefix }
}

// keyStore opens the event store with keys on, for planting and checking what was written.
func keyStore(t testing.TB, url string, replicas int) *jetstore.Store {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	st, err := jetstore.New(js, jetstore.Config{Replicas: replicas, KeyPrefix: jetstore.DefaultKeyPrefix}, jetstore.WithUpcasters(resourcestore.Upcasters()...))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// wantHolder checks who holds a key.
func wantHolder(t testing.TB, st *jetstore.Store, space cr.KeySpace, key, holder string) {
	t.Helper()
	h, err := st.Key(testCtx(t), string(space), key)
	if err != nil {
		t.Fatal(err)
	}
	if holder == "" && h.Held || holder != "" && (!h.Held || h.Aggregate.ID != holder) {
		t.Fatalf("%s %q held by %+v, want %q", space, key, h, holder)
	}
}

func TestUniqueHostnames(t *testing.T) {
	t.Parallel()
	url := natstest.RunServer(t).ClientURL()
	ctx := testCtx(t)
	startInstance(t, url, withKeys())
	st := keyStore(t, url, 1)
	c := newClient(t, url)

	first, err := c.Register(ctx, api.Register{Hostname: "web-01.example.com", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	wantHolder(t, st, cr.KeySpaceHostname, "web-01.example.com", first.AggregateID)

	// Compared case-insensitively, with or without the trailing dot; refused with the holder
	// named, nothing written, the command id answering afresh on a re-send.
	cmdID := newID()
	second := api.Register{Envelope: api.Envelope{CommandID: cmdID}, AggregateID: newID(), Hostname: "WEB-01.Example.com.", ResourceType: "vm"}
	for range 2 {
		_, err = c.Register(ctx, second)
		e := wantError(t, err, api.CodeConflict, api.KindHostnameTaken)
		if e.Field != "hostname" || e.Details["holder_id"] != first.AggregateID || e.Details["hostname"] != "web-01.example.com" {
			t.Fatalf("hostname_taken: %+v, want holder_id %s", e, first.AggregateID)
		}
	}
	if events := eventsOf(t, st, second.AggregateID); len(events) != 0 {
		t.Fatalf("refused register wrote %d events", len(events))
	}

	// Decommissioning releases it; then the refused command, re-sent, takes it.
	if _, err := c.ChangeStatus(ctx, api.ChangeStatus{Target: api.Target{AggregateID: first.AggregateID}, Status: "decommissioned"}); err != nil {
		t.Fatal(err)
	}
	wantHolder(t, st, cr.KeySpaceHostname, "web-01.example.com", "")
	if _, err := c.Register(ctx, second); err != nil {
		t.Fatalf("register of a released hostname: %v", err)
	}
	wantHolder(t, st, cr.KeySpaceHostname, "web-01.example.com", second.AggregateID)
}

func TestUniqueAssetTags(t *testing.T) {
	t.Parallel()
	url := natstest.RunServer(t).ClientURL()
	ctx := testCtx(t)
	startInstance(t, url, withKeys())
	st := keyStore(t, url, 1)
	c := newClient(t, url)
	register := func(host string) string {
		t.Helper()
		r, err := c.Register(ctx, api.Register{Hostname: host, ResourceType: "vm"})
		if err != nil {
			t.Fatal(err)
		}
		return r.AggregateID
	}
	tag := func(id, tag string) error {
		_, err := c.AssignAssetTag(ctx, api.AssignAssetTag{Target: api.Target{AggregateID: id}, AssetTag: tag})
		return err
	}
	a, b := register("a.example.com"), register("b.example.com")
	if err := tag(a, "T-1"); err != nil {
		t.Fatal(err)
	}
	e := wantError(t, tag(b, "T-1"), api.CodeConflict, api.KindAssetTagTaken)
	if e.Field != "asset_tag" || e.Details["holder_id"] != a || e.Details["asset_tag"] != "t-1" {
		t.Fatalf("asset_tag_taken: %+v, want holder_id %s and the tag in lower case", e, a)
	}
	// Compared ignoring case: another letter case is the same tag.
	wantError(t, tag(b, "t-1"), api.CodeConflict, api.KindAssetTagTaken)
	// The holder may write its own tag in another case: it keeps the key.
	if err := tag(a, "t-1"); err != nil {
		t.Fatalf("holder re-writing its tag in lower case: %v", err)
	}
	wantHolder(t, st, cr.KeySpaceAssetTag, "t-1", a)
	// Re-tagging releases the old tag in the same write.
	if err := tag(a, "T-2"); err != nil {
		t.Fatal(err)
	}
	wantHolder(t, st, cr.KeySpaceAssetTag, "t-1", "")
	if err := tag(b, "T-1"); err != nil {
		t.Fatalf("tag released by re-tagging: %v", err)
	}
	wantHolder(t, st, cr.KeySpaceAssetTag, "t-1", b)
	// Decommissioning releases the tag.
	if _, err := c.ChangeStatus(ctx, api.ChangeStatus{Target: api.Target{AggregateID: b}, Status: "decommissioned"}); err != nil {
		t.Fatal(err)
	}
	wantHolder(t, st, cr.KeySpaceAssetTag, "t-1", "")
	if err := tag(a, "T-1"); err != nil {
		t.Fatalf("tag released by decommissioning: %v", err)
	}
	wantHolder(t, st, cr.KeySpaceAssetTag, "t-2", "")
	wantHolder(t, st, cr.KeySpaceAssetTag, "t-1", a)
}

// TestRegisterRetriedAfterLostReply: the register was written (its hostname claimed) and its
// reply lost; an instance whose cache still has the resource unregistered gets the re-send,
// decides the register again and appends it with its claim. The store recognises the write:
// the reply is the first result, not hostname_taken.
func TestRegisterRetriedAfterLostReply(t *testing.T) {
	t.Parallel()
	url := natstest.RunServer(t).ClientURL()
	ctx := testCtx(t)
	in := startInstance(t, url, withKeys())
	st := keyStore(t, url, 1)
	c := newClient(t, url)

	id, cmdID := uuid.New(), uuid.New()
	// The instance caches the resource unregistered.
	_, err := c.AssignOwner(ctx, api.AssignOwner{Target: api.Target{AggregateID: id.String()}, OwnerID: newID()})
	wantError(t, err, api.CodeNotFound, api.KindNotRegistered)

	// The earlier attempt, written by another instance whose reply was lost: the same decision.
	host, err := cr.ParseHostname("lost.example.com")
	if err != nil {
		t.Fatal(err)
	}
	events, err := cr.Decide(cr.State{}, cr.RegisterResource{Meta: cr.CommandMeta{CommandID: cmdID, CorrelationID: cmdID, Timestamp: in.svc.now().UTC()}, ID: id, Hostname: host, Type: cr.ResourceTypeVirtualMachine})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := resourcestore.ToStore(events)
	if err != nil {
		t.Fatal(err)
	}
	written, err := st.Append(ctx, resourcestore.Ref(id), 0, stored, jetstore.Claim(string(cr.KeySpaceHostname), host.String()))
	if err != nil {
		t.Fatal(err)
	}

	hits := in.counter(t, in.svc.metrics.cacheHits)
	r, err := c.Register(ctx, api.Register{Envelope: api.Envelope{CommandID: cmdID.String()}, AggregateID: id.String(), Hostname: "lost.example.com", ResourceType: "vm"})
	if err != nil {
		t.Fatalf("re-sent register: %v, want its first result", err)
	}
	if !r.Duplicate || len(r.Events) != 1 || r.Events[0].Sequence != written.FirstSequence {
		t.Fatalf("re-sent register: %+v, want duplicate of sequence %d", r, written.FirstSequence)
	}
	if in.counter(t, in.svc.metrics.cacheHits) != hits+1 {
		t.Fatal("the re-send was not decided on the cached (stale) state: the test did not take the append path")
	}
	wantHolder(t, st, cr.KeySpaceHostname, "lost.example.com", id.String())
	if n := len(eventsOf(t, st, id.String())); n != 1 {
		t.Fatalf("%d events, want 1", n)
	}
}

// TestRetryDecidedOnAnotherState: an earlier attempt of a command, decided on another state,
// wrote two events (its first with the id the command's first event has now); the command
// decided again writes one. The store reports the id re-used by another write; the service
// reads the history again and answers from the earlier attempt, writing nothing.
func TestRetryDecidedOnAnotherState(t *testing.T) {
	t.Parallel()
	url := natstest.RunServer(t).ClientURL()
	ctx := testCtx(t)
	in := startInstance(t, url)
	st := testStore(t, url, 1)
	c := newClient(t, url)
	reg, err := c.Register(ctx, api.Register{Hostname: "retry.example.com", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	id := mustUUID(t, reg.AggregateID)
	cmdID, owner := uuid.New(), uuid.New()

	// The earlier attempt: the command's event, then another of the same command.
	meta := cr.CommandMeta{CommandID: cmdID, CorrelationID: cmdID, Timestamp: in.svc.now().UTC()}
	registered := cr.Fold(cr.State{}, mustDecide(t, cr.State{}, cr.RegisterResource{Meta: meta, ID: id, Hostname: mustHostname(t, "retry.example.com"), Type: cr.ResourceTypeVirtualMachine})...)
	decided := mustDecide(t, registered, cr.AssignOwner{Meta: meta, ID: id, OwnerID: cr.PersonID(owner)})
	extra := cr.MetadataUpdated{EventMeta: decided[0].Meta(), Key: "env", Value: "prod"}
	extra.EventID = uuid.New()
	stored, err := resourcestore.ToStore(append(decided, extra))
	if err != nil {
		t.Fatal(err)
	}
	written, err := st.Append(ctx, resourcestore.Ref(id), reg.Version, stored)
	if err != nil {
		t.Fatal(err)
	}

	// The instance's cache is at the register: it decides one event, whose id is stored.
	r, err := c.AssignOwner(ctx, api.AssignOwner{Target: api.Target{Envelope: api.Envelope{CommandID: cmdID.String()}, AggregateID: reg.AggregateID}, OwnerID: owner.String()})
	if err != nil {
		t.Fatalf("command whose earlier attempt wrote two events: %v, want that result", err)
	}
	if !r.Duplicate || len(r.Events) != 2 || r.Events[0].Sequence != written.FirstSequence || r.Events[1].Sequence != written.LastSequence {
		t.Fatalf("reply %+v, want the duplicate of sequences %d-%d", r, written.FirstSequence, written.LastSequence)
	}
	if n := len(eventsOf(t, st, reg.AggregateID)); n != 3 {
		t.Fatalf("%d events, want 3 (register and the earlier attempt)", n)
	}
}

func mustDecide(t testing.TB, s cr.State, c cr.Command) []cr.Event {
	t.Helper()
	events, err := cr.Decide(s, c)
	if err != nil {
		t.Fatal(err)
	}
	return events
}
