package computeresource

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
)

var testNamespace = uuid.MustParse("6f1c1c8e-4c9e-4d43-9a53-0d9e8f7b2a11")

// uid returns a stable, readable-in-tests UUID for a name.
func uid(name string) uuid.UUID { return uuid.NewSHA1(testNamespace, []byte(name)) }

var (
	resID    = uid("resource")
	orgA     = OrganizationID(uid("org-a"))
	orgB     = OrganizationID(uid("org-b"))
	locA     = LocationID(uid("loc-a"))
	locB     = LocationID(uid("loc-b"))
	ownerA   = PersonID(uid("owner-a"))
	ownerB   = PersonID(uid("owner-b"))
	policyA  = PolicyID(uid("policy-a"))
	policyB  = PolicyID(uid("policy-b"))
	conceptA = AccountConceptID(uid("concept-a"))
	conceptB = AccountConceptID(uid("concept-b"))
	baseTime = time.Date(2026, 1, 19, 10, 0, 0, 123456789, time.UTC)
)

// meta returns command metadata whose ids and time derive from name, so each command of a
// test is distinct and reproducible.
func meta(name string) CommandMeta {
	return CommandMeta{CommandID: uid("cmd/" + name), CorrelationID: uid("corr"), Timestamp: baseTime}
}

func mustHostname(t testing.TB, s string) Hostname {
	t.Helper()
	h, err := ParseHostname(s)
	if err != nil {
		t.Fatalf("ParseHostname(%q): %v", s, err)
	}
	return h
}

// run decides and applies each command in turn, failing the test on any error.
func run(t testing.TB, s State, cmds ...Command) State {
	t.Helper()
	for _, c := range cmds {
		events, err := Decide(s, c)
		if err != nil {
			t.Fatalf("Decide(%s): %v", c.CommandName(), err)
		}
		s = Fold(s, events...)
	}
	return s
}

func registerCmd(t testing.TB) RegisterResource {
	return RegisterResource{Meta: meta("register"), ID: resID, Hostname: mustHostname(t, "web-01.example.com"), Type: ResourceTypeVirtualMachine}
}

// richState is a registered resource with every attribute set, moved to status to.
func richState(t testing.TB, to Status) State {
	t.Helper()
	s := run(t, State{},
		registerCmd(t),
		AssignOrganization{Meta: meta("org"), ID: resID, OrganizationID: orgA},
		AssignLocation{Meta: meta("loc"), ID: resID, LocationID: locA},
		AssignOwner{Meta: meta("owner"), ID: resID, OwnerID: ownerA},
		AddPolicy{Meta: meta("policy"), ID: resID, PolicyID: policyA},
		AssignAccountConcept{Meta: meta("concept"), ID: resID, ConceptID: conceptA},
		SetHardwareDetails{Meta: meta("hw"), ID: resID, Manufacturer: ptr("Dell"), Model: ptr("R740"), SerialNumber: ptr("SN-1")},
		AssignAssetTag{Meta: meta("tag"), ID: resID, AssetTag: "ASSET-1"},
		UpdateMetadata{Meta: meta("md"), ID: resID, Key: "env", Value: "prod"},
	)
	path := map[Status][]Status{
		StatusProvisioning:   nil,
		StatusActive:         {StatusActive},
		StatusMaintenance:    {StatusActive, StatusMaintenance},
		StatusDecommissioned: {StatusDecommissioned},
	}[to]
	for _, st := range path {
		s = run(t, s, ChangeStatus{Meta: meta("to-" + st.String()), ID: resID, To: st})
	}
	if s.Status() != to {
		t.Fatalf("richState: status %s, want %s", s.Status(), to)
	}
	return s
}

func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want one matching %v", err, target)
	}
}

// decodeStored decodes an event as a reader of the event store sees it: the store's registry
// applies the domain's Upcasters up to the current version, then the reader calls DecodeEvent.
func decodeStored(typ string, version int, data []byte) (Event, error) {
	for {
		i := slices.IndexFunc(upcasters, func(u Upcaster) bool { return u.EventType == typ && u.FromVersion == version })
		if i < 0 {
			return DecodeEvent(typ, version, data)
		}
		var err error
		if data, err = upcasters[i].Upcast(data); err != nil {
			return nil, err
		}
		version++
	}
}
