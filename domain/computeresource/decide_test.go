package computeresource

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// outcome is what Decide should return: an error matching err, or events of these types.
type outcome struct {
	err    error
	events []string
}

func ok(types ...string) outcome { return outcome{events: types} }
func fails(err error) outcome    { return outcome{err: err} }

var nothing = outcome{} // succeeds with no events

const (
	stUnregistered   = "unregistered"
	stProvisioning   = "provisioning"
	stActive         = "active"
	stMaintenance    = "maintenance"
	stDecommissioned = "decommissioned"
)

var stateNames = []string{stUnregistered, stProvisioning, stActive, stMaintenance, stDecommissioned}

// onRegistered is the usual expectation: o in every live status, refused when not
// registered or decommissioned.
func onRegistered(o outcome) map[string]outcome {
	return map[string]outcome{
		stUnregistered:   fails(ErrNotRegistered),
		stProvisioning:   o,
		stActive:         o,
		stMaintenance:    o,
		stDecommissioned: fails(ErrDecommissioned),
	}
}

func TestDecideEveryCommandInEveryState(t *testing.T) {
	t.Parallel()
	states := map[string]State{
		stUnregistered:   {},
		stProvisioning:   richState(t, StatusProvisioning),
		stActive:         richState(t, StatusActive),
		stMaintenance:    richState(t, StatusMaintenance),
		stDecommissioned: richState(t, StatusDecommissioned),
	}
	m := meta("under-test")
	status := func(to Status, prov, act, maint outcome) map[string]outcome {
		return map[string]outcome{
			stUnregistered: fails(ErrNotRegistered), stProvisioning: prov, stActive: act,
			stMaintenance: maint, stDecommissioned: fails(ErrDecommissioned),
		}
	}
	changed := ok(EventTypeStatusChanged)
	invalid := fails(ErrInvalidTransition)
	tests := []struct {
		name string
		cmd  Command
		want map[string]outcome
	}{
		{"register", RegisterResource{Meta: m, ID: resID, Hostname: mustHostname(t, "db-1"), Type: ResourceTypeFirewall},
			map[string]outcome{
				stUnregistered: ok(EventTypeResourceRegistered), stProvisioning: fails(ErrAlreadyRegistered),
				stActive: fails(ErrAlreadyRegistered), stMaintenance: fails(ErrAlreadyRegistered),
				stDecommissioned: fails(ErrDecommissioned),
			}},
		{"assign other organization", AssignOrganization{Meta: m, ID: resID, OrganizationID: orgB}, onRegistered(ok(EventTypeOrganizationAssigned))},
		{"assign same organization", AssignOrganization{Meta: m, ID: resID, OrganizationID: orgA}, onRegistered(nothing)},
		{"assign other location", AssignLocation{Meta: m, ID: resID, LocationID: locB}, onRegistered(ok(EventTypeLocationAssigned))},
		{"assign same location", AssignLocation{Meta: m, ID: resID, LocationID: locA}, onRegistered(nothing)},
		{"assign other owner", AssignOwner{Meta: m, ID: resID, OwnerID: ownerB}, onRegistered(ok(EventTypeOwnerAssigned))},
		{"assign same owner", AssignOwner{Meta: m, ID: resID, OwnerID: ownerA}, onRegistered(nothing)},
		{"add new policy", AddPolicy{Meta: m, ID: resID, PolicyID: policyB}, onRegistered(ok(EventTypePolicyAdded))},
		{"add present policy", AddPolicy{Meta: m, ID: resID, PolicyID: policyA}, onRegistered(fails(ErrPolicyAlreadyAdded))},
		{"remove present policy", RemovePolicy{Meta: m, ID: resID, PolicyID: policyA}, onRegistered(ok(EventTypePolicyRemoved))},
		{"remove absent policy", RemovePolicy{Meta: m, ID: resID, PolicyID: policyB}, onRegistered(fails(ErrPolicyNotFound))},
		{"assign other account concept", AssignAccountConcept{Meta: m, ID: resID, ConceptID: conceptB}, onRegistered(ok(EventTypeAccountConceptAssigned))},
		{"assign same account concept", AssignAccountConcept{Meta: m, ID: resID, ConceptID: conceptA}, onRegistered(nothing)},
		{"clear account concept", ClearAccountConcept{Meta: m, ID: resID}, onRegistered(ok(EventTypeAccountConceptCleared))},
		{"set changed hardware", SetHardwareDetails{Meta: m, ID: resID, Model: ptr("R750")}, onRegistered(ok(EventTypeHardwareDetailsSet))},
		{"set same hardware", SetHardwareDetails{Meta: m, ID: resID, Manufacturer: ptr("Dell"), Model: ptr("R740"), SerialNumber: ptr("SN-1")}, onRegistered(nothing)},
		{"set no hardware", SetHardwareDetails{Meta: m, ID: resID}, onRegistered(nothing)},
		{"assign other asset tag", AssignAssetTag{Meta: m, ID: resID, AssetTag: "ASSET-2"}, onRegistered(ok(EventTypeAssetTagAssigned))},
		{"assign same asset tag", AssignAssetTag{Meta: m, ID: resID, AssetTag: "ASSET-1"}, onRegistered(nothing)},
		{"update metadata new key", UpdateMetadata{Meta: m, ID: resID, Key: "team", Value: "infra"}, onRegistered(ok(EventTypeMetadataUpdated))},
		{"update metadata changed value", UpdateMetadata{Meta: m, ID: resID, Key: "env", Value: "staging"}, onRegistered(ok(EventTypeMetadataUpdated))},
		{"update metadata empty value", UpdateMetadata{Meta: m, ID: resID, Key: "env", Value: ""}, onRegistered(ok(EventTypeMetadataUpdated))},
		{"update metadata same value", UpdateMetadata{Meta: m, ID: resID, Key: "env", Value: "prod"}, onRegistered(nothing)},
		{"to provisioning", ChangeStatus{Meta: m, ID: resID, To: StatusProvisioning}, status(StatusProvisioning, nothing, invalid, invalid)},
		{"to active", ChangeStatus{Meta: m, ID: resID, To: StatusActive}, status(StatusActive, changed, nothing, changed)},
		{"to maintenance", ChangeStatus{Meta: m, ID: resID, To: StatusMaintenance}, status(StatusMaintenance, invalid, changed, nothing)},
		{"to decommissioned", ChangeStatus{Meta: m, ID: resID, To: StatusDecommissioned}, status(StatusDecommissioned, changed, changed, changed)},
	}
	for _, tt := range tests {
		for _, stName := range stateNames {
			want, listed := tt.want[stName]
			if !listed {
				t.Fatalf("%s: no expectation for state %s", tt.name, stName)
			}
			t.Run(tt.name+"/"+stName, func(t *testing.T) {
				s := states[stName]
				events, err := Decide(s, tt.cmd)
				if want.err != nil {
					wantErr(t, err, want.err)
					if !errors.Is(err, ErrRuleViolated) || errors.Is(err, ErrInvalidInput) {
						t.Errorf("error %v is not classified as a rule violation only", err)
					}
					if events != nil {
						t.Errorf("events %v returned with an error", events)
					}
					return
				}
				if err != nil {
					t.Fatalf("Decide: %v", err)
				}
				if got := eventTypes(events); strings.Join(got, ",") != strings.Join(want.events, ",") {
					t.Fatalf("events %v, want %v", got, want.events)
				}
				checkEnvelopes(t, tt.cmd, events)
				next := Fold(s, events...)
				// Once applied, the same command changes nothing more (or is refused).
				again, err := Decide(next, tt.cmd)
				if err == nil && len(again) != 0 {
					t.Errorf("the command decided again on the new state gives %v", eventTypes(again))
				}
				if len(events) > 0 && !next.UpdatedAt().Equal(baseTime) {
					t.Errorf("UpdatedAt = %v, want %v", next.UpdatedAt(), baseTime)
				}
			})
		}
	}
}

func eventTypes(events []Event) []string {
	out := []string{}
	for _, e := range events {
		out = append(out, e.EventType())
	}
	return out
}

func checkEnvelopes(t *testing.T, c Command, events []Event) {
	t.Helper()
	cm := c.Metadata()
	seen := map[uuid.UUID]bool{}
	for i, e := range events {
		m := e.Meta()
		if m.AggregateID != c.AggregateID() || m.CommandID != cm.CommandID || m.CorrelationID != cm.CorrelationID ||
			m.CausationID != cm.CommandID || !m.Timestamp.Equal(cm.Timestamp) || m.Timestamp.Location() != time.UTC {
			t.Errorf("event %d envelope %+v does not follow command meta %+v", i, m, cm)
		}
		if m.EventID == uuid.Nil || seen[m.EventID] || m.EventID.Version() != 5 {
			t.Errorf("event %d id %s is nil, repeated or not name-based", i, m.EventID)
		}
		seen[m.EventID] = true
	}
}

func TestDecideAppliesEventsToState(t *testing.T) {
	t.Parallel()
	s := richState(t, StatusActive)
	if !s.Registered() || s.ID() != resID || s.Hostname().String() != "web-01.example.com" || s.Type() != ResourceTypeVirtualMachine {
		t.Fatalf("identity: %v %v %v %v", s.Registered(), s.ID(), s.Hostname(), s.Type())
	}
	if id, ok := s.OrganizationID(); !ok || id != orgA {
		t.Errorf("OrganizationID = %v, %v", id, ok)
	}
	if id, ok := s.LocationID(); !ok || id != locA {
		t.Errorf("LocationID = %v, %v", id, ok)
	}
	if id, ok := s.OwnerID(); !ok || id != ownerA {
		t.Errorf("OwnerID = %v, %v", id, ok)
	}
	if id, ok := s.AccountConceptID(); !ok || id != conceptA {
		t.Errorf("AccountConceptID = %v, %v", id, ok)
	}
	if p := s.Policies(); len(p) != 1 || p[0] != policyA || !s.HasPolicy(policyA) || s.HasPolicy(policyB) {
		t.Errorf("Policies = %v", p)
	}
	for name, get := range map[string]func() (string, bool){
		"Dell": s.Manufacturer, "R740": s.Model, "SN-1": s.SerialNumber, "ASSET-1": s.AssetTag,
	} {
		if v, ok := get(); !ok || v != name {
			t.Errorf("got %q, %v; want %q", v, ok, name)
		}
	}
	if v, ok := s.MetadataValue("env"); !ok || v != "prod" {
		t.Errorf("MetadataValue(env) = %q, %v", v, ok)
	}
	if md := s.Metadata(); len(md) != 1 || md["env"] != "prod" {
		t.Errorf("Metadata = %v", md)
	}
	if !s.CreatedAt().Equal(baseTime) || !s.UpdatedAt().Equal(baseTime) {
		t.Errorf("CreatedAt %v UpdatedAt %v", s.CreatedAt(), s.UpdatedAt())
	}

	later := meta("later")
	later.Timestamp = baseTime.Add(time.Hour)
	s2 := run(t, s,
		ClearAccountConcept{Meta: later, ID: resID},
		RemovePolicy{Meta: meta("rm"), ID: resID, PolicyID: policyA},
	)
	if _, ok := s2.AccountConceptID(); ok {
		t.Error("account concept still set after ClearAccountConcept")
	}
	if len(s2.Policies()) != 0 || s2.HasPolicy(policyA) {
		t.Errorf("policies after removal: %v", s2.Policies())
	}
	if !s2.CreatedAt().Equal(baseTime) {
		t.Errorf("CreatedAt moved to %v", s2.CreatedAt())
	}
	// The original state is untouched (copy on write).
	if !s.HasPolicy(policyA) || len(s.Policies()) != 1 {
		t.Error("Apply changed the policies of its input state")
	}
	events, err := Decide(s2, ClearAccountConcept{Meta: meta("clear-again"), ID: resID})
	if err != nil || len(events) != 0 {
		t.Errorf("clearing an absent account concept: %v, %v", eventTypes(events), err)
	}
}

func TestUnregisteredStateGetters(t *testing.T) {
	t.Parallel()
	var s State
	if s.Registered() || !s.Status().IsZero() || !s.Hostname().IsZero() || !s.Type().IsZero() {
		t.Fatal("zero State looks registered")
	}
	for _, ok := range []bool{second(s.OrganizationID()), second(s.LocationID()), second(s.OwnerID()),
		second(s.AccountConceptID()), second(s.Manufacturer()), second(s.Model()), second(s.SerialNumber()),
		second(s.AssetTag()), second(s.MetadataValue("x"))} {
		if ok {
			t.Fatal("zero State has a value")
		}
	}
	if md := s.Metadata(); md == nil || len(md) != 0 {
		t.Errorf("Metadata of zero State = %#v, want empty non-nil map", md)
	}
	if s.Policies() != nil {
		t.Errorf("Policies of zero State = %v", s.Policies())
	}
}

func second[T any](_ T, ok bool) bool { return ok }

func TestActivationNeedsOrganizationAndLocation(t *testing.T) {
	t.Parallel()
	reg := run(t, State{}, registerCmd(t))
	withOrg := run(t, reg, AssignOrganization{Meta: meta("o"), ID: resID, OrganizationID: orgA})
	withLoc := run(t, reg, AssignLocation{Meta: meta("l"), ID: resID, LocationID: locA})
	both := run(t, withOrg, AssignLocation{Meta: meta("l"), ID: resID, LocationID: locA})
	activate := ChangeStatus{Meta: meta("activate"), ID: resID, To: StatusActive}
	for _, tt := range []struct {
		name             string
		s                State
		missOrg, missLoc bool
	}{
		{"neither", reg, true, true},
		{"organization only", withOrg, false, true},
		{"location only", withLoc, true, false},
	} {
		_, err := Decide(tt.s, activate)
		wantErr(t, err, ErrActivationPrecondition)
		wantErr(t, err, ErrRuleViolated)
		var ae *ActivationError
		if !errors.As(err, &ae) || ae.MissingOrganization != tt.missOrg || ae.MissingLocation != tt.missLoc {
			t.Errorf("%s: %v (%+v)", tt.name, err, ae)
		}
		for missing, is := range map[string]bool{"organization": tt.missOrg, "location": tt.missLoc} {
			if strings.Contains(err.Error(), missing) != is {
				t.Errorf("%s: message %q about %s", tt.name, err, missing)
			}
		}
	}
	events, err := Decide(both, activate)
	if err != nil || len(events) != 1 {
		t.Fatalf("activation with both: %v, %v", events, err)
	}
	sc := events[0].(StatusChanged)
	if sc.From != StatusProvisioning || sc.To != StatusActive {
		t.Errorf("StatusChanged %s -> %s", sc.From, sc.To)
	}
	// Decommissioning needs neither.
	if _, err := Decide(reg, ChangeStatus{Meta: meta("d"), ID: resID, To: StatusDecommissioned}); err != nil {
		t.Errorf("decommission from provisioning: %v", err)
	}
}

func TestTransitionErrorSaysWhatIsAllowed(t *testing.T) {
	t.Parallel()
	_, err := Decide(richState(t, StatusProvisioning), ChangeStatus{Meta: meta("m"), ID: resID, To: StatusMaintenance})
	var te *TransitionError
	if !errors.As(err, &te) || te.From != StatusProvisioning || te.To != StatusMaintenance {
		t.Fatalf("error %v, want *TransitionError provisioning -> maintenance", err)
	}
	for _, want := range []string{"provisioning -> maintenance", "active or decommissioned"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	terminal := (&TransitionError{From: StatusDecommissioned, To: StatusActive}).Error()
	if !strings.Contains(terminal, "terminal") {
		t.Errorf("message %q does not say decommissioned is terminal", terminal)
	}
}

func TestDecideRefusesInvalidInput(t *testing.T) {
	t.Parallel()
	live := richState(t, StatusActive)
	m := meta("bad")
	noCmdID := m
	noCmdID.CommandID = uuid.Nil
	noTime := m
	noTime.Timestamp = time.Time{}
	long := func(n int, c string) string { return strings.Repeat(c, n) }
	tests := []struct {
		name  string
		s     State
		cmd   Command
		field string
	}{
		{"nil command", live, nil, "command"},
		{"nil command id", live, AssignAssetTag{Meta: noCmdID, ID: resID, AssetTag: "x"}, "command_id"},
		{"zero timestamp", live, AssignAssetTag{Meta: noTime, ID: resID, AssetTag: "x"}, "timestamp"},
		{"nil aggregate id", live, AssignAssetTag{Meta: m, ID: uuid.Nil, AssetTag: "x"}, "id"},
		{"zero hostname", State{}, RegisterResource{Meta: m, ID: resID, Type: ResourceTypeRouter}, "hostname"},
		{"zero resource type", State{}, RegisterResource{Meta: m, ID: resID, Hostname: mustHostname(t, "a")}, "resource_type"},
		{"nil organization", live, AssignOrganization{Meta: m, ID: resID}, "organization_id"},
		{"nil location", live, AssignLocation{Meta: m, ID: resID}, "location_id"},
		{"nil owner", live, AssignOwner{Meta: m, ID: resID}, "owner_id"},
		{"nil policy to add", live, AddPolicy{Meta: m, ID: resID}, "policy_id"},
		{"nil policy to remove", live, RemovePolicy{Meta: m, ID: resID}, "policy_id"},
		{"nil account concept", live, AssignAccountConcept{Meta: m, ID: resID}, "concept_id"},
		{"zero status", live, ChangeStatus{Meta: m, ID: resID}, "to_status"},
		{"empty manufacturer", live, SetHardwareDetails{Meta: m, ID: resID, Manufacturer: ptr("")}, "manufacturer"},
		{"long model", live, SetHardwareDetails{Meta: m, ID: resID, Model: ptr(long(257, "m"))}, "model"},
		{"control char in serial", live, SetHardwareDetails{Meta: m, ID: resID, SerialNumber: ptr("SN\x07")}, "serial_number"},
		{"invalid UTF-8 serial", live, SetHardwareDetails{Meta: m, ID: resID, SerialNumber: ptr("SN\xff")}, "serial_number"},
		{"empty asset tag", live, AssignAssetTag{Meta: m, ID: resID}, "asset_tag"},
		{"long asset tag", live, AssignAssetTag{Meta: m, ID: resID, AssetTag: long(65, "a")}, "asset_tag"},
		{"newline in asset tag", live, AssignAssetTag{Meta: m, ID: resID, AssetTag: "a\nb"}, "asset_tag"},
		{"empty metadata key", live, UpdateMetadata{Meta: m, ID: resID, Value: "v"}, "metadata_key"},
		{"long metadata key", live, UpdateMetadata{Meta: m, ID: resID, Key: long(129, "k")}, "metadata_key"},
		{"space in metadata key", live, UpdateMetadata{Meta: m, ID: resID, Key: "a b"}, "metadata_key"},
		{"non-ASCII metadata key", live, UpdateMetadata{Meta: m, ID: resID, Key: "clé"}, "metadata_key"},
		{"long metadata value", live, UpdateMetadata{Meta: m, ID: resID, Key: "k", Value: long(4097, "v")}, "metadata_value"},
		{"invalid UTF-8 metadata value", live, UpdateMetadata{Meta: m, ID: resID, Key: "k", Value: "\xc3("}, "metadata_value"},
		// Input errors come before state: even a decommissioned resource reports them.
		{"input before state", richState(t, StatusDecommissioned), AssignAssetTag{Meta: m, ID: resID}, "asset_tag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := Decide(tt.s, tt.cmd)
			wantErr(t, err, ErrInvalidInput)
			if errors.Is(err, ErrRuleViolated) {
				t.Errorf("%v is also a rule violation", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Errorf("error %v, want a *FieldError on %s", err, tt.field)
			}
			if events != nil {
				t.Errorf("events returned with an error: %v", events)
			}
		})
	}
}

func TestBoundsAreInclusive(t *testing.T) {
	t.Parallel()
	s := richState(t, StatusActive)
	for _, c := range []Command{
		SetHardwareDetails{Meta: meta("1"), ID: resID, Manufacturer: ptr(strings.Repeat("é", MaxHardwareFieldLength))},
		AssignAssetTag{Meta: meta("2"), ID: resID, AssetTag: strings.Repeat("T", MaxAssetTagLength)},
		AssignAssetTag{Meta: meta("3"), ID: resID, AssetTag: "Tag with spaces & ünïcode"},
		UpdateMetadata{Meta: meta("4"), ID: resID, Key: strings.Repeat("k", MaxMetadataKeyLength), Value: strings.Repeat("é", MaxMetadataValueLength)},
		UpdateMetadata{Meta: meta("5"), ID: resID, Key: "Aa0._/-", Value: "one line, with spaces & ünïcode"},
	} {
		if events, err := Decide(s, c); err != nil || len(events) != 1 {
			t.Errorf("%s: %v, %v", c.CommandName(), eventTypes(events), err)
		}
	}
}

func TestFieldErrorMessagesSayTheBound(t *testing.T) {
	t.Parallel()
	s := richState(t, StatusActive)
	for _, tt := range []struct {
		cmd  Command
		want []string
	}{
		{UpdateMetadata{Meta: meta("k"), ID: resID, Key: "bad key"}, []string{"metadata_key", `"bad key"`, "1-128", "[A-Za-z0-9._/-]", "' '"}},
		{UpdateMetadata{Meta: meta("k2"), ID: resID, Key: "clé"}, []string{"metadata_key", `'é'`}},
		{UpdateMetadata{Meta: meta("v"), ID: resID, Key: "k", Value: strings.Repeat("v", 5000)}, []string{"metadata_value", "at most 4096 printable characters", "(has 5000)"}},
		{AssignAssetTag{Meta: meta("t"), ID: resID, AssetTag: "a\tb"}, []string{"asset_tag", "1-64 printable", "U+0009"}},
		{SetHardwareDetails{Meta: meta("h"), ID: resID, Model: ptr("")}, []string{"model", "1-256 printable", "has 0"}},
		{AssignOwner{Meta: meta("o"), ID: resID}, []string{"owner_id", "required"}},
	} {
		_, err := Decide(s, tt.cmd)
		for _, w := range tt.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: message %v lacks %q", tt.cmd.CommandName(), err, w)
			}
		}
	}
}

func TestDecideRefusesCommandForAnotherResource(t *testing.T) {
	t.Parallel()
	other := uid("other")
	_, err := Decide(richState(t, StatusActive), AssignAssetTag{Meta: meta("x"), ID: other, AssetTag: "x"})
	wantErr(t, err, ErrWrongAggregate)
	wantErr(t, err, ErrInvalidInput)
	if !strings.Contains(err.Error(), other.String()) || !strings.Contains(err.Error(), resID.String()) {
		t.Errorf("message %q does not name both ids", err)
	}
}

func TestRuleErrorMessagesNameTheValue(t *testing.T) {
	t.Parallel()
	s := richState(t, StatusActive)
	for _, tt := range []struct {
		s    State
		cmd  Command
		want string
	}{
		{s, AddPolicy{Meta: meta("a"), ID: resID, PolicyID: policyA}, policyA.String()},
		{s, RemovePolicy{Meta: meta("r"), ID: resID, PolicyID: policyB}, policyB.String()},
		{s, registerCmd(t), "web-01.example.com"},
		{State{}, AssignAssetTag{Meta: meta("t"), ID: resID, AssetTag: "x"}, resID.String()},
		{richState(t, StatusDecommissioned), AssignAssetTag{Meta: meta("t"), ID: resID, AssetTag: "x"}, "assign_asset_tag"},
	} {
		_, err := Decide(tt.s, tt.cmd)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: message %v lacks %q", tt.cmd.CommandName(), err, tt.want)
		}
	}
}

func TestEventIDsAndCausation(t *testing.T) {
	t.Parallel()
	s := richState(t, StatusActive)
	c := AssignAssetTag{Meta: meta("retry"), ID: resID, AssetTag: "NEW"}
	first, err1 := Decide(s, c)
	second, err2 := Decide(s, c)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	// The derivation is part of the contract: a retry after a redeploy must still give the
	// same id. SHA-1 name-based UUID, namespace = command id, name = aggregate id ++ index.
	wantID := uuid.NewSHA1(c.Meta.CommandID, append(resID[:], 0, 0, 0, 0))
	if got := first[0].Meta().EventID; got != wantID || got.String() != "48f68ab8-c4d1-5c65-a4d2-01e18cebe444" {
		t.Errorf("event id %s, want %s", got, wantID)
	}
	a, _ := EncodeEvent(first[0])
	b, _ := EncodeEvent(second[0])
	if string(a.Data) != string(b.Data) {
		t.Errorf("a retried command gives different events:\n%s\n%s", a.Data, b.Data)
	}
	// Another command id gives another event id; an explicit causation is kept; a missing
	// correlation becomes the command id.
	c2 := c
	c2.Meta.CommandID = uid("cmd/other")
	c2.Meta.CausationID = uid("cause")
	c2.Meta.CorrelationID = uuid.Nil
	c2.Meta.Timestamp = baseTime.In(time.FixedZone("CET", 3600))
	ev, err := Decide(s, c2)
	if err != nil {
		t.Fatal(err)
	}
	m := ev[0].Meta()
	if m.EventID == first[0].Meta().EventID || m.CausationID != uid("cause") || m.CorrelationID != c2.Meta.CommandID {
		t.Errorf("envelope %+v", m)
	}
	if m.Timestamp.Location() != time.UTC || !m.Timestamp.Equal(baseTime) {
		t.Errorf("timestamp %v not normalised to UTC", m.Timestamp)
	}
	// The same command id addressed to another aggregate gives another event id.
	c3 := RegisterResource{Meta: c.Meta, ID: uid("other"), Hostname: mustHostname(t, "x"), Type: ResourceTypeOther}
	ev3, err := Decide(State{}, c3)
	if err != nil || ev3[0].Meta().EventID == first[0].Meta().EventID {
		t.Errorf("event id shared across aggregates: %v", err)
	}
}

func TestCommandNamesAndAccessors(t *testing.T) {
	t.Parallel()
	m := meta("names")
	cmds := map[string]Command{
		"register":               RegisterResource{Meta: m, ID: resID},
		"assign_organization":    AssignOrganization{Meta: m, ID: resID},
		"assign_location":        AssignLocation{Meta: m, ID: resID},
		"assign_owner":           AssignOwner{Meta: m, ID: resID},
		"add_policy":             AddPolicy{Meta: m, ID: resID},
		"remove_policy":          RemovePolicy{Meta: m, ID: resID},
		"assign_account_concept": AssignAccountConcept{Meta: m, ID: resID},
		"clear_account_concept":  ClearAccountConcept{Meta: m, ID: resID},
		"set_hardware_details":   SetHardwareDetails{Meta: m, ID: resID},
		"assign_asset_tag":       AssignAssetTag{Meta: m, ID: resID},
		"update_metadata":        UpdateMetadata{Meta: m, ID: resID},
		"change_status":          ChangeStatus{Meta: m, ID: resID},
	}
	for name, c := range cmds {
		if c.CommandName() != name || c.AggregateID() != resID || c.Metadata() != m {
			t.Errorf("%T: name %q id %v meta %v", c, c.CommandName(), c.AggregateID(), c.Metadata())
		}
		c.isCommand()
	}
	if len(cmds) != 12 {
		t.Fatalf("%d commands", len(cmds))
	}
}

func ExampleDecide() {
	hostname, err := ParseHostname("Web-01.Example.com")
	if err != nil {
		fmt.Println(err)
		return
	}
	cmd := RegisterResource{
		Meta: CommandMeta{
			CommandID: uuid.MustParse("0b9f8d2e-3c1a-4e5b-8f7d-6a2c1e0d9b8a"),
			Timestamp: time.Date(2026, 1, 19, 10, 0, 0, 0, time.UTC),
		},
		ID:       uuid.MustParse("7c3e2a1b-9d8f-4e6a-b5c4-3d2e1f0a9b8c"),
		Hostname: hostname,
		Type:     ResourceTypeVirtualMachine,
	}
	events, err := Decide(State{}, cmd)
	if err != nil {
		fmt.Println(err)
		return
	}
	s := Fold(State{}, events...)
	fmt.Println(events[0].EventType(), s.Hostname(), s.Status(), s.Type(), s.Type().Category())

	_, err = Decide(s, ChangeStatus{Meta: cmd.Meta, ID: cmd.ID, To: StatusActive})
	fmt.Println(errors.Is(err, ErrRuleViolated), err)
	// Output:
	// ResourceRegistered web-01.example.com provisioning virtual_machine compute
	// true change_status: rule violated: activation precondition not met: provisioning -> active needs an assigned organization and location
}

// TestValidateIsDecidesInputCheck: for random commands, valid and not, Validate reports exactly
// the ErrInvalidInput errors Decide reports against the empty state, and Decide reports Validate's
// error against any state.
func TestValidateIsDecidesInputCheck(t *testing.T) {
	t.Parallel()
	invalid := 0
	states := randomStates(t, 5, 20)
	for seq := range 50 {
		g := &commandGen{rng: rand.New(rand.NewPCG(uint64(seq), 11)), id: uid(fmt.Sprint("validate", seq))}
		for range 40 {
			c := g.next()
			verr := Validate(c)
			if verr != nil {
				invalid++
				if !errors.Is(verr, ErrInvalidInput) {
					t.Fatalf("Validate(%T) = %v, not ErrInvalidInput", c, verr)
				}
			}
			// Against the empty state, Decide's input errors are exactly Validate's.
			_, derr := Decide(State{}, c)
			if isInput := errors.Is(derr, ErrInvalidInput); isInput != (verr != nil) || isInput && derr.Error() != verr.Error() {
				t.Fatalf("%T: Validate %v, Decide %v", c, verr, derr)
			}
			// Against any state, Validate's error is Decide's (which may add its own, such as a
			// command addressed to another resource).
			for _, s := range states[len(states)-3:] {
				if _, derr := Decide(s, c); verr != nil && (derr == nil || derr.Error() != verr.Error()) {
					t.Fatalf("%T: Validate %v, Decide %v", c, verr, derr)
				}
			}
		}
	}
	if invalid == 0 {
		t.Fatal("no invalid command drawn")
	}
	if err := Validate(nil); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("Validate(nil) = %v", err)
	}
}

// TestValueCheckMessages pins the reasons given for bad free-text values and metadata keys
// (clients show them to people).
func TestValueCheckMessages(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		err  error
		want string
	}{
		{checkText("asset_tag", "", 1, 64), "must be 1-64 printable characters (has 0)"},
		{checkText("model", "a\x00", 1, 8), "must be 1-8 printable characters (contains U+0000)"},
		{checkText("model", "\xff", 1, 8), "must be 1-8 printable characters (not valid UTF-8)"},
		{checkText("metadata_value", "a\x1b[31m", 0, 8), "must be at most 8 printable characters (contains U+001B)"},
		{checkMetadataKey("bad key"), fmt.Sprintf("must be 1-%d characters from %s (contains ' ')", MaxMetadataKeyLength, MetadataKeyCharacters)},
		{checkMetadataKey(""), fmt.Sprintf("must be 1-%d characters from %s (has 0)", MaxMetadataKeyLength, MetadataKeyCharacters)},
	} {
		var fe *FieldError
		if !errors.As(c.err, &fe) || fe.Reason != c.want {
			t.Errorf("reason %v, want %q", c.err, c.want)
		}
	}
	if checkText("model", "R740", 1, 8) != nil || checkMetadataKey("team") != nil {
		t.Error("valid values refused")
	}
}

// TestEventTimeNeverGoesBack: a command stamped before the resource's last event (clients'
// clocks differ) takes that event's time, so updated_at is never before created_at or an
// earlier updated_at; a later stamp is kept as it is.
func TestEventTimeNeverGoesBack(t *testing.T) {
	t.Parallel()
	s := run(t, State{}, registerCmd(t))
	at := func(name string, ts time.Time) CommandMeta {
		m := meta(name)
		m.Timestamp = ts
		return m
	}
	for _, tc := range []struct {
		name string
		ts   time.Time
		want time.Time
	}{
		{"earlier", baseTime.Add(-time.Hour), baseTime},
		{"same", baseTime, baseTime},
		{"later", baseTime.Add(time.Minute), baseTime.Add(time.Minute)},
	} {
		events, err := Decide(s, AssignOwner{Meta: at(tc.name, tc.ts), ID: resID, OwnerID: ownerA})
		if err != nil || len(events) != 1 {
			t.Fatalf("%s: %v, %d events", tc.name, err, len(events))
		}
		if got := events[0].Meta().Timestamp; !got.Equal(tc.want) {
			t.Errorf("%s: stamped %s, event time %s; want %s", tc.name, tc.ts, got, tc.want)
		}
		if next := Fold(s, events...); next.UpdatedAt().Before(next.CreatedAt()) {
			t.Errorf("%s: updated_at %s before created_at %s", tc.name, next.UpdatedAt(), next.CreatedAt())
		}
	}
}
