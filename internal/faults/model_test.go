package faults

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/google/uuid"
)

// TestModelTellsLinearizableFromNot shows that the linearizability check can fail: small
// histories of one aggregate, some linearizable, some not, including operations whose outcome
// is unknown.
func TestModelTellsLinearizableFromNot(t *testing.T) {
	t.Parallel()
	id := uuid.MustParse("11111111-1111-4111-8111-111111111111")
	policy := cr.PolicyID(uuid.MustParse("22222222-2222-4222-8222-222222222222"))
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	meta := func() cr.CommandMeta {
		n++
		return cr.CommandMeta{CommandID: uuid.NewSHA1(id, []byte{byte(n)}), Timestamp: clock.Add(time.Duration(n) * time.Second)}
	}
	host, _ := cr.ParseHostname("h.example.com")
	register := cr.RegisterResource{Meta: meta(), ID: id, Hostname: host, Type: cr.ResourceTypes()[0]}
	registered := cr.Fold(cr.State{}, mustEvents(t, cr.State{}, register)...)
	add1 := cr.AddPolicy{Meta: meta(), ID: id, PolicyID: policy}
	add2 := cr.AddPolicy{Meta: meta(), ID: id, PolicyID: policy}
	withPolicy := cr.Fold(registered, mustEvents(t, registered, add1)...)

	okOut := func(events ...string) Output { return Output{Outcome: OutcomeOK, Events: events} }
	refused := func(kind string) Output { return Output{Outcome: OutcomeRefused, Kind: kind} }
	read := func(s cr.State) Output { return Output{Outcome: OutcomeRead, State: Digest(s)} }
	op := func(client int, c cr.Command, out Output, call, ret int64) Op {
		return Op{Client: client, Aggregate: id, Input: Input{Command: c}, Output: out, Call: call, Return: ret}
	}
	get := func(client int, out Output, call, ret int64) Op {
		return Op{Client: client, Aggregate: id, Output: out, Call: call, Return: ret}
	}
	regOp := op(0, register, okOut(cr.EventTypeResourceRegistered), 0, 1)
	tag := cr.AssignAssetTag{Meta: meta(), ID: id, AssetTag: "TAG-1"}
	tagAgain := cr.AssignAssetTag{Meta: meta(), ID: id, AssetTag: "TAG-1"}
	tagged := cr.Fold(registered, mustEvents(t, registered, tag)...)

	cases := []struct {
		name string
		ops  []Op
		want porcupine.CheckResult
	}{
		{"one add wins, the other is refused", []Op{regOp,
			op(1, add1, okOut(cr.EventTypePolicyAdded), 2, 5), op(2, add2, refused("policy_already_added"), 3, 6)}, porcupine.Ok},
		{"both concurrent adds succeed", []Op{regOp,
			op(1, add1, okOut(cr.EventTypePolicyAdded), 2, 5), op(2, add2, okOut(cr.EventTypePolicyAdded), 3, 6)}, porcupine.Illegal},
		{"a refusal before anything could have added", []Op{regOp,
			op(2, add2, refused("policy_already_added"), 2, 3), op(1, add1, okOut(cr.EventTypePolicyAdded), 4, 5)}, porcupine.Illegal},
		{"a read after an acknowledged add misses it", []Op{regOp,
			op(1, add1, okOut(cr.EventTypePolicyAdded), 2, 3), get(2, read(registered), 4, 5)}, porcupine.Illegal},
		{"a read after an acknowledged add sees it", []Op{regOp,
			op(1, add1, okOut(cr.EventTypePolicyAdded), 2, 3), get(2, read(withPolicy), 4, 5)}, porcupine.Ok},
		{"an unknown add that took effect", []Op{regOp,
			op(1, add1, Output{Outcome: OutcomeUnknown}, 2, Forever), get(2, read(withPolicy), 4, 5)}, porcupine.Ok},
		{"an unknown add that did not take effect", []Op{regOp,
			op(1, add1, Output{Outcome: OutcomeUnknown}, 2, Forever), get(2, read(registered), 4, 5)}, porcupine.Ok},
		{"an unknown add seen, then unseen", []Op{regOp,
			op(1, add1, Output{Outcome: OutcomeUnknown}, 2, Forever), get(2, read(withPolicy), 4, 5), get(2, read(registered), 6, 7)}, porcupine.Illegal},
		{"a read of a resource not yet registered", []Op{get(1, Output{Outcome: OutcomeNotFound}, 0, 0), regOp}, porcupine.Ok},
		{"a conflict changes nothing", []Op{regOp,
			op(1, add1, Output{Outcome: OutcomeConflict}, 2, 3), get(2, read(registered), 4, 5)}, porcupine.Ok},
		// Keys: a refusal for a key held elsewhere changes nothing, and only a command whose
		// events claim that key can get it.
		{"a register refused for its hostname registers nothing", []Op{
			op(1, register, refused(KindHostnameTaken), 0, 1), get(2, Output{Outcome: OutcomeNotFound}, 2, 3)}, porcupine.Ok},
		{"a register refused for its hostname, then seen registered", []Op{
			op(1, register, refused(KindHostnameTaken), 0, 1), get(2, read(registered), 2, 3)}, porcupine.Illegal},
		{"a hostname refusal of a register the domain refuses", []Op{regOp,
			op(1, register, refused(KindHostnameTaken), 2, 3)}, porcupine.Illegal},
		{"an asset tag refused, the state unchanged", []Op{regOp,
			op(1, tag, refused(KindAssetTagTaken), 2, 3), get(2, read(registered), 4, 5)}, porcupine.Ok},
		{"an asset tag refused for the tag the resource carries", []Op{regOp,
			op(1, tag, okOut(cr.EventTypeAssetTagAssigned), 2, 3), get(2, read(tagged), 4, 5),
			op(1, tagAgain, refused(KindAssetTagTaken), 6, 7)}, porcupine.Illegal},
		{"an asset tag assignment refused for a hostname", []Op{regOp,
			op(1, tag, refused(KindHostnameTaken), 2, 3)}, porcupine.Illegal},
	}
	for _, c := range cases {
		got := porcupine.CheckOperationsTimeout(AggregateModel(), Operations(c.ops), 10*time.Second)
		if got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

func mustEvents(t *testing.T, s cr.State, c cr.Command) []cr.Event {
	t.Helper()
	evs, err := cr.Decide(s, c)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}
