package computeresource

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// commandGen draws commands for one resource from small pools, so that repeats (the same
// organization, a policy already added, the current status) happen often.
type commandGen struct {
	rng *rand.Rand
	id  uuid.UUID
	n   int
}

func (g *commandGen) meta() CommandMeta {
	g.n++
	m := CommandMeta{
		CommandID: uuid.NewSHA1(g.id, []byte(fmt.Sprint("cmd", g.n))),
		Timestamp: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(g.n) * time.Minute),
	}
	if g.rng.IntN(2) == 0 {
		m.CorrelationID = uuid.NewSHA1(g.id, []byte("corr"))
	}
	if g.rng.IntN(3) == 0 {
		m.CausationID = uuid.NewSHA1(g.id, []byte(fmt.Sprint("cause", g.rng.IntN(3))))
	}
	return m
}

func (g *commandGen) pick(n int, kind string) uuid.UUID {
	return uuid.NewSHA1(testNamespace, []byte(fmt.Sprint(kind, g.rng.IntN(n))))
}

func (g *commandGen) text(valid bool) string {
	if !valid {
		return []string{"", "bad\x00", strings.Repeat("x", 300)}[g.rng.IntN(3)]
	}
	return []string{"a", "Dell", "R740", "SN-1", "tag 42"}[g.rng.IntN(5)]
}

// next returns a random command; about one in ten has an invalid value.
func (g *commandGen) next() Command {
	m := g.meta()
	valid := g.rng.IntN(10) != 0
	maybe := func() *string {
		if g.rng.IntN(2) == 0 {
			return nil
		}
		s := g.text(valid)
		return &s
	}
	kind := g.rng.IntN(13)
	if g.n == 1 {
		kind = 0 // most histories start with a registration
	}
	switch kind {
	case 0:
		h := Hostname{name: fmt.Sprint("host-", g.rng.IntN(3))}
		return RegisterResource{Meta: m, ID: g.id, Hostname: h, Type: ResourceTypes()[g.rng.IntN(33)]}
	case 1:
		return AssignOrganization{Meta: m, ID: g.id, OrganizationID: OrganizationID(g.pick(2, "org"))}
	case 2:
		return AssignLocation{Meta: m, ID: g.id, LocationID: LocationID(g.pick(2, "loc"))}
	case 3:
		return AssignOwner{Meta: m, ID: g.id, OwnerID: PersonID(g.pick(2, "owner"))}
	case 4:
		return AddPolicy{Meta: m, ID: g.id, PolicyID: PolicyID(g.pick(4, "policy"))}
	case 5:
		return RemovePolicy{Meta: m, ID: g.id, PolicyID: PolicyID(g.pick(4, "policy"))}
	case 6:
		return AssignAccountConcept{Meta: m, ID: g.id, ConceptID: AccountConceptID(g.pick(2, "concept"))}
	case 7:
		return ClearAccountConcept{Meta: m, ID: g.id}
	case 8:
		return SetHardwareDetails{Meta: m, ID: g.id, Manufacturer: maybe(), Model: maybe(), SerialNumber: maybe()}
	case 9:
		return AssignAssetTag{Meta: m, ID: g.id, AssetTag: g.text(valid)}
	case 10:
		key := []string{"env", "team", "a/b"}[g.rng.IntN(3)]
		if !valid {
			key = "bad key"
		}
		return UpdateMetadata{Meta: m, ID: g.id, Key: key, Value: []string{"", "prod", "dev"}[g.rng.IntN(3)]}
	case 11:
		if !valid {
			return ChangeStatus{Meta: m, ID: g.id}
		}
		fallthrough
	default:
		// Status changes are drawn twice as often, decommissioning (terminal) less often
		// than the others, so that histories reach every status and stay alive.
		to := []Status{StatusProvisioning, StatusActive, StatusActive, StatusMaintenance, StatusMaintenance, StatusActive, StatusMaintenance, StatusDecommissioned}
		return ChangeStatus{Meta: m, ID: g.id, To: to[g.rng.IntN(len(to))]}
	}
}

// TestPropertyFoldEqualsStepwise runs random command sequences (seeded, so deterministic)
// and checks, after every command, that the state kept by deciding and applying equals the
// fold of the whole history, the event-by-event application of it, and the fold of the
// history decoded from its encoding; and that earlier states were never modified.
func TestPropertyFoldEqualsStepwise(t *testing.T) {
	t.Parallel()
	const sequences, length = 300, 80
	reached := map[Status]int{}
	outcomes := map[string]int{}
	for seq := range sequences {
		g := &commandGen{rng: rand.New(rand.NewPCG(uint64(seq), 2026)), id: uid(fmt.Sprint("prop", seq))}
		var (
			s        State
			history  []Event
			encoded  []EncodedEvent
			snaps    []State
			snapLens []int
		)
		for step := range length {
			c := g.next()
			events, err := Decide(s, c)
			if err != nil {
				if errors.Is(err, ErrInvalidInput) == errors.Is(err, ErrRuleViolated) {
					t.Fatalf("seq %d step %d: error in neither or both classes: %v", seq, step, err)
				}
				outcomes["refused"]++
				continue
			}
			if len(events) == 0 {
				outcomes["no change"]++
			} else {
				outcomes["events"]++
			}
			// A retry of the same command against the same state encodes identically.
			retry, err := Decide(s, c)
			if err != nil || len(retry) != len(events) {
				t.Fatalf("seq %d step %d: retry differs: %v", seq, step, err)
			}
			for i := range events {
				a, err1 := EncodeEvent(events[i])
				b, err2 := EncodeEvent(retry[i])
				if err1 != nil || err2 != nil || string(a.Data) != string(b.Data) {
					t.Fatalf("seq %d step %d: retry encodes differently: %v %v", seq, step, err1, err2)
				}
				encoded = append(encoded, a)
			}
			s = Fold(s, events...)
			history = append(history, events...)
			snaps = append(snaps, s)
			snapLens = append(snapLens, len(history))

			if whole := Fold(State{}, history...); !whole.Equal(s) {
				t.Fatalf("seq %d step %d: Fold of the history differs from the decided state", seq, step)
			}
			var stepwise State
			for _, e := range history {
				stepwise = Apply(stepwise, e)
			}
			if !stepwise.Equal(s) {
				t.Fatalf("seq %d step %d: event-by-event application differs", seq, step)
			}
			checkInvariants(t, s)
			reached[s.Status()]++
		}
		var decoded []Event
		for _, enc := range encoded {
			e, err := DecodeEvent(enc.Type, enc.Version, enc.Data)
			if err != nil {
				t.Fatalf("seq %d: %v", seq, err)
			}
			decoded = append(decoded, e)
		}
		if !Fold(State{}, decoded...).Equal(s) {
			t.Fatalf("seq %d: the decoded history folds to another state", seq)
		}
		// States are values: no later Apply changed an earlier one.
		for i, snap := range snaps {
			if !Fold(State{}, history[:snapLens[i]]...).Equal(snap) {
				t.Fatalf("seq %d: state %d was modified by a later Apply", seq, i)
			}
		}
	}
	// The generator must actually exercise the domain, or the property says little.
	for _, st := range Statuses() {
		if reached[st] == 0 {
			t.Errorf("no sequence reached %s", st)
		}
	}
	for _, o := range []string{"refused", "no change", "events"} {
		if outcomes[o] == 0 {
			t.Errorf("no command ended %s", o)
		}
	}
	t.Logf("statuses reached %v, outcomes %v", reached, outcomes)
}

func checkInvariants(t *testing.T, s State) {
	t.Helper()
	if !s.Registered() {
		return
	}
	p := s.Policies()
	if !slices.IsSortedFunc(p, comparePolicyID) || len(slices.Compact(slices.Clone(p))) != len(p) {
		t.Fatalf("policies not a sorted set: %v", p)
	}
	if st := s.Status(); st == StatusActive || st == StatusMaintenance {
		_, org := s.OrganizationID()
		_, loc := s.LocationID()
		if !org || !loc {
			t.Fatalf("%s without organization or location", st)
		}
	}
	if s.UpdatedAt().Before(s.CreatedAt()) {
		t.Fatalf("updated %v before created %v", s.UpdatedAt(), s.CreatedAt())
	}
}
