package commandservice

import (
	"slices"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// plant writes a resource's history with a store that keeps no keys, as services did before
// keys existed: registered with host, tagged with tag (if not empty), decommissioned if gone.
func plant(t *testing.T, st *jetstore.Store, host, tag string, gone bool) uuid.UUID {
	t.Helper()
	id := uuid.New()
	at := time.Now().UTC()
	cmds := []cr.Command{cr.RegisterResource{Meta: cr.CommandMeta{CommandID: uuid.New(), CorrelationID: uuid.New(), Timestamp: at}, ID: id, Hostname: mustHostname(t, host), Type: cr.ResourceTypeVirtualMachine}}
	if tag != "" {
		cmds = append(cmds, cr.AssignAssetTag{Meta: cr.CommandMeta{CommandID: uuid.New(), CorrelationID: uuid.New(), Timestamp: at}, ID: id, AssetTag: tag})
	}
	if gone {
		cmds = append(cmds, cr.ChangeStatus{Meta: cr.CommandMeta{CommandID: uuid.New(), CorrelationID: uuid.New(), Timestamp: at}, ID: id, To: cr.StatusDecommissioned})
	}
	var s cr.State
	var seq uint64
	for _, c := range cmds {
		events := mustDecide(t, s, c)
		stored, err := resourcestore.ToStore(events)
		if err != nil {
			t.Fatal(err)
		}
		res, err := st.Append(testCtx(t), resourcestore.Ref(id), seq, stored)
		if err != nil {
			t.Fatal(err)
		}
		s, seq = cr.Fold(s, events...), res.LastSequence
	}
	return id
}

func TestIndexKeysReportsPlantedDuplicates(t *testing.T) {
	t.Parallel()
	url := natstest.RunServer(t).ClientURL()
	ctx := testCtx(t)
	keyed := keyStore(t, url, 1)
	if err := keyed.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	plain := testStore(t, url, 1)

	dup1 := plant(t, plain, "dup.example.com", "", false)
	dup2 := plant(t, plain, "DUP.example.com", "", false)
	plant(t, plain, "dup.example.com", "", true) // decommissioned: holds nothing
	solo := plant(t, plain, "solo.example.com", "T-9", false)
	tag1 := plant(t, plain, "t1.example.com", "T-dup", false)
	tag2 := plant(t, plain, "t2.example.com", "t-DUP", false) // the same tag in another case
	gone := plant(t, plain, "gone.example.com", "T-gone", true)

	sorted := func(ids ...uuid.UUID) []uuid.UUID {
		slices.SortFunc(ids, func(a, b uuid.UUID) int { return compare(a.String(), b.String()) })
		return ids
	}
	wantDuplicates := []KeyDuplicate{
		{Key: cr.Key{Space: cr.KeySpaceAssetTag, Value: "t-dup"}, Resources: sorted(tag1, tag2)},
		{Key: cr.Key{Space: cr.KeySpaceHostname, Value: "dup.example.com"}, Resources: sorted(dup1, dup2)},
	}
	js, err := jetstream.New(natstest.Connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	for run, want := range []IndexKeysResult{{Claimed: 4}, {Held: 4}} { // the second run: idempotent
		res, err := IndexKeys(ctx, js, jetstore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Claimed != want.Claimed || res.Held != want.Held || len(res.Conflicts) != 0 ||
			!slices.EqualFunc(res.Duplicates, wantDuplicates, func(a, b KeyDuplicate) bool { return a.Key == b.Key && slices.Equal(a.Resources, b.Resources) }) {
			t.Fatalf("run %d: %+v, want claimed %d, held %d, duplicates %+v", run+1, res, want.Claimed, want.Held, wantDuplicates)
		}
	}
	wantHolder(t, keyed, cr.KeySpaceHostname, "solo.example.com", solo.String())
	wantHolder(t, keyed, cr.KeySpaceAssetTag, "t-9", solo.String())
	wantHolder(t, keyed, cr.KeySpaceHostname, "t1.example.com", tag1.String())
	wantHolder(t, keyed, cr.KeySpaceHostname, "t2.example.com", tag2.String())
	wantHolder(t, keyed, cr.KeySpaceHostname, "dup.example.com", "")
	wantHolder(t, keyed, cr.KeySpaceAssetTag, "t-dup", "")
	wantHolder(t, keyed, cr.KeySpaceHostname, "gone.example.com", "")
	wantHolder(t, keyed, cr.KeySpaceAssetTag, "t-gone", "")
	_ = gone

	// The claims are the service's: another register of an indexed hostname is refused, and
	// decommissioning the holder releases it.
	startInstance(t, url, withKeys())
	c := newClient(t, url)
	_, err = c.Register(ctx, api.Register{Hostname: "solo.example.com", ResourceType: "vm"})
	if e := wantError(t, err, api.CodeConflict, api.KindHostnameTaken); e.Details["holder_id"] != solo.String() {
		t.Fatalf("hostname_taken names %v, want %s", e.Details["holder_id"], solo)
	}
	if _, err := c.ChangeStatus(ctx, api.ChangeStatus{Target: api.Target{AggregateID: solo.String()}, Status: "decommissioned"}); err != nil {
		t.Fatal(err)
	}
	wantHolder(t, keyed, cr.KeySpaceHostname, "solo.example.com", "")
	wantHolder(t, keyed, cr.KeySpaceAssetTag, "t-9", "")
}
