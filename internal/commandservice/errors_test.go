package commandservice

import (
	"context"
	"encoding/json"
	"strings"
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

// TestBadRequests sends malformed and invalid requests and checks that each is refused with
// 400 and the field at fault, before anything is written.
func TestBadRequests(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	in := startInstance(t, srv.ClientURL(), withOptions(func(o *Options) { o.MaxRequestBytes = 8 << 10 }))
	c := newClient(t, srv.ClientURL())
	ctx := testCtx(t)
	reg, err := c.Register(ctx, api.Register{Hostname: "web-1", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	id := reg.AggregateID

	tests := []struct {
		name, command, body string
		kind, field         string
	}{
		{"unknown field", api.CmdRegister, `{"hostname":"a","resource_type":"vm","colour":"red"}`, api.KindUnknownField, "colour"},
		{"unknown envelope field", api.CmdAssignOwner, `{"aggregate_id":"` + id + `","owner_id":"` + newID() + `","commandid":"x"}`, api.KindUnknownField, "commandid"},
		{"wrong type", api.CmdRegister, `{"hostname":42,"resource_type":"vm"}`, api.KindInvalidField, "hostname"},
		{"wrong type in envelope", api.CmdAssignOwner, `{"aggregate_id":"` + id + `","owner_id":"` + newID() + `","command_id":7}`, api.KindInvalidField, "command_id"},
		{"wrong type of optional pointer", api.CmdSetHardwareDetails, `{"aggregate_id":"` + id + `","model":["x"]}`, api.KindInvalidField, "model"},
		{"missing hostname", api.CmdRegister, `{"resource_type":"vm"}`, api.KindMissingField, "hostname"},
		{"missing resource type", api.CmdRegister, `{"hostname":"a"}`, api.KindMissingField, "resource_type"},
		{"missing aggregate id", api.CmdAssignOrganization, `{"organization_id":"` + newID() + `"}`, api.KindMissingField, "aggregate_id"},
		{"missing organization id", api.CmdAssignOrganization, `{"aggregate_id":"` + id + `"}`, api.KindMissingField, "organization_id"},
		{"missing status", api.CmdChangeStatus, `{"aggregate_id":"` + id + `"}`, api.KindMissingField, "status"},
		{"missing metadata key", api.CmdUpdateMetadata, `{"aggregate_id":"` + id + `","value":"v"}`, api.KindMissingField, "key"},
		{"no hardware detail", api.CmdSetHardwareDetails, `{"aggregate_id":"` + id + `"}`, api.KindMissingField, "manufacturer"},
		{"malformed aggregate id", api.CmdAssignOwner, `{"aggregate_id":"not-a-uuid","owner_id":"` + newID() + `"}`, api.KindInvalidField, "aggregate_id"},
		{"nil aggregate id", api.CmdAssignOwner, `{"aggregate_id":"00000000-0000-0000-0000-000000000000","owner_id":"` + newID() + `"}`, api.KindInvalidField, "aggregate_id"},
		{"malformed policy id", api.CmdAddPolicy, `{"aggregate_id":"` + id + `","policy_id":"1234"}`, api.KindInvalidField, "policy_id"},
		{"malformed command id", api.CmdRegister, `{"command_id":"abc","hostname":"a","resource_type":"vm"}`, api.KindInvalidField, "command_id"},
		{"malformed correlation id", api.CmdRegister, `{"correlation_id":"abc","hostname":"a","resource_type":"vm"}`, api.KindInvalidField, "correlation_id"},
		{"malformed timestamp", api.CmdRegister, `{"timestamp":"yesterday","hostname":"a","resource_type":"vm"}`, api.KindInvalidField, "timestamp"},
		{"timestamp of wrong type", api.CmdRegister, `{"timestamp":12,"hostname":"a","resource_type":"vm"}`, api.KindInvalidField, "timestamp"},
		{"oversized metadata value", api.CmdUpdateMetadata, `{"aggregate_id":"` + id + `","key":"k","value":"` + strings.Repeat("x", cr.MaxMetadataValueLength+1) + `"}`, api.KindInvalidField, "value"},
		{"oversized asset tag", api.CmdAssignAssetTag, `{"aggregate_id":"` + id + `","asset_tag":"` + strings.Repeat("x", 65) + `"}`, api.KindInvalidField, "asset_tag"},
		{"oversized hostname", api.CmdRegister, `{"hostname":"` + strings.Repeat("a.", 130) + `com","resource_type":"vm"}`, api.KindInvalidField, "hostname"},
		{"bad metadata key", api.CmdUpdateMetadata, `{"aggregate_id":"` + id + `","key":"a key","value":"v"}`, api.KindInvalidField, "key"},
		{"bad hostname", api.CmdRegister, `{"hostname":"-web_01","resource_type":"vm"}`, api.KindInvalidField, "hostname"},
		{"address as hostname", api.CmdRegister, `{"hostname":"10.0.0.1","resource_type":"vm"}`, api.KindInvalidField, "hostname"},
		{"bad resource type", api.CmdRegister, `{"hostname":"a","resource_type":"toaster"}`, api.KindInvalidField, "resource_type"},
		{"bad status", api.CmdChangeStatus, `{"aggregate_id":"` + id + `","status":"asleep"}`, api.KindInvalidField, "status"},
		{"malformed json", api.CmdRegister, `{"hostname":"a",`, api.KindMalformedJSON, ""},
		{"syntax error", api.CmdRegister, `{"hostname" "a"}`, api.KindMalformedJSON, "hostname"},
		{"not an object", api.CmdRegister, `["a"]`, api.KindMalformedJSON, ""},
		{"two objects", api.CmdRegister, `{"hostname":"a","resource_type":"vm"} {}`, api.KindMalformedJSON, ""},
		{"empty body", api.CmdRegister, ``, api.KindEmptyRequest, ""},
		{"blank body", api.CmdAssignOwner, "  \n", api.KindEmptyRequest, ""},
		{"body too large", api.CmdUpdateMetadata, `{"aggregate_id":"` + id + `","key":"k","value":"` + strings.Repeat("x", 9000) + `"}`, api.KindRequestTooLarge, ""},
		{"get: malformed id", api.QueryGet, `{"aggregate_id":"x"}`, api.KindInvalidField, "aggregate_id"},
		{"get: unknown field", api.QueryGet, `{"aggregate_id":"` + id + `","as_of":1}`, api.KindUnknownField, "as_of"},
		{"get: negative sequence", api.QueryGet, `{"aggregate_id":"` + id + `","as_of_sequence":-1}`, api.KindInvalidField, "as_of_sequence"},
		{"get: bad time", api.QueryGet, `{"aggregate_id":"` + id + `","as_of_time":"noon"}`, api.KindInvalidField, "as_of_time"},
		{"history: limit too large", api.QueryHistory, `{"aggregate_id":"` + id + `","limit":1001}`, api.KindInvalidField, "limit"},
		{"history: missing id", api.QueryHistory, `{}`, api.KindMissingField, "aggregate_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subject := api.CommandSubject(tt.command)
			if tt.command == api.QueryGet || tt.command == api.QueryHistory {
				subject = api.QuerySubject(tt.command)
			}
			e := replyError(t, rawRequest(t, in.nc, subject, []byte(tt.body)))
			if e.Code != api.CodeInvalid || e.Kind != tt.kind || e.Field != tt.field || e.Message == "" {
				t.Fatalf("reply %+v, want 400 %s field %q", e, tt.kind, tt.field)
			}
		})
	}
	// Nothing but the registration was written.
	last, err := testStore(t, srv.ClientURL(), 1).LastSequence(ctx)
	if err != nil || last != 1 {
		t.Fatalf("stream last sequence %d (%v), want 1", last, err)
	}
}

// TestErrorClasses provokes every class of error reply and checks code, kind and details.
func TestErrorClasses(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	in := startInstance(t, srv.ClientURL())
	c := newClient(t, srv.ClientURL())
	ctx := testCtx(t)

	reg, err := c.Register(ctx, api.Register{Hostname: "web-1", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	id := reg.AggregateID
	tg := api.Target{AggregateID: id}
	unknown := api.Target{AggregateID: newID()}

	_, err = c.AssignOwner(ctx, api.AssignOwner{Target: unknown, OwnerID: newID()})
	wantError(t, err, api.CodeNotFound, api.KindNotRegistered)
	_, err = c.Get(ctx, api.Get{AggregateID: unknown.AggregateID})
	wantError(t, err, api.CodeNotFound, api.KindNotFound)
	_, err = c.Get(ctx, api.Get{AggregateID: unknown.AggregateID, AsOfSequence: 1})
	wantError(t, err, api.CodeNotFound, api.KindNotFound)
	_, err = c.History(ctx, api.History{AggregateID: unknown.AggregateID})
	wantError(t, err, api.CodeNotFound, api.KindNotFound)
	_, err = c.History(ctx, api.History{AggregateID: unknown.AggregateID, AfterSequence: 5})
	wantError(t, err, api.CodeNotFound, api.KindNotFound)

	_, err = c.Register(ctx, api.Register{AggregateID: id, Hostname: "web-2", ResourceType: "vm"})
	wantError(t, err, api.CodeConflict, api.KindAlreadyRegistered)

	e := wantError(t, func() error {
		_, err := c.ChangeStatus(ctx, api.ChangeStatus{Target: tg, Status: "maintenance"})
		return err
	}(), api.CodeConflict, api.KindInvalidTransition)
	if e.Details["from"] != "provisioning" || e.Details["to"] != "maintenance" {
		t.Fatalf("transition details %v", e.Details)
	}
	e = wantError(t, func() error {
		_, err := c.ChangeStatus(ctx, api.ChangeStatus{Target: tg, Status: "active"})
		return err
	}(), api.CodeConflict, api.KindActivationPrecondition)
	if missing, _ := json.Marshal(e.Details["missing"]); string(missing) != `["organization","location"]` {
		t.Fatalf("activation details %v", e.Details)
	}
	pol := newID()
	if _, err := c.AddPolicy(ctx, api.AddPolicy{Target: tg, PolicyID: pol}); err != nil {
		t.Fatal(err)
	}
	_, err = c.AddPolicy(ctx, api.AddPolicy{Target: tg, PolicyID: pol})
	wantError(t, err, api.CodeConflict, api.KindPolicyAlreadyAdded)
	_, err = c.RemovePolicy(ctx, api.RemovePolicy{Target: tg, PolicyID: newID()})
	wantError(t, err, api.CodeConflict, api.KindPolicyNotFound)

	if _, err := c.ChangeStatus(ctx, api.ChangeStatus{Target: tg, Status: "decommissioned"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.AssignAssetTag(ctx, api.AssignAssetTag{Target: tg, AssetTag: "x"})
	wantError(t, err, api.CodeConflict, api.KindDecommissioned)
	_, err = c.Register(ctx, api.Register{AggregateID: id, Hostname: "web-2", ResourceType: "vm"})
	wantError(t, err, api.CodeConflict, api.KindDecommissioned)

	// 500: a message on a resource's subject that is not an event (no headers).
	corrupt := newID()
	js, err := jetstream.New(in.nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "cim.evt.computeresource."+corrupt, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	_, err = c.AssignOwner(ctx, api.AssignOwner{Target: api.Target{AggregateID: corrupt}, OwnerID: newID()})
	wantError(t, err, api.CodeInternal, api.KindInternal)
	_, err = c.Get(ctx, api.Get{AggregateID: corrupt})
	wantError(t, err, api.CodeInternal, api.KindInternal)

	if n := in.counter(t, in.svc.metrics.commands.WithLabelValues(api.CmdChangeStatus, OutcomeRejected)); n != 2 {
		t.Fatalf("rejected change_status count %v, want 2", n)
	}
}

// TestConcurrencyConflict writes behind an instance's back: with no retry allowed the command
// is refused with 409 concurrency and writes nothing; with retries it succeeds on the re-read
// state.
func TestConcurrencyConflict(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	ctx := testCtx(t)
	st := testStore(t, srv.ClientURL(), 1)

	for _, retries := range []int{0, 2} {
		in := startInstance(t, srv.ClientURL(), withOptions(func(o *Options) { o.MaxRetries = retries }))
		c := newClient(t, srv.ClientURL())
		reg, err := c.Register(ctx, api.Register{Hostname: "web-1", ResourceType: "vm"})
		if err != nil {
			t.Fatal(err)
		}
		id := uuid.MustParse(reg.AggregateID)
		// Another writer appends: the instance's cached state is now one event behind.
		behind := cr.AssignOwner{Meta: cr.CommandMeta{CommandID: uuid.New(), Timestamp: time.Now()}, ID: id, OwnerID: cr.PersonID(uuid.New())}
		state := cr.Fold(cr.State{}, decode(t, eventsOf(t, st, id.String()))...)
		evs, err := cr.Decide(state, behind)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := resourcestore.ToStore(evs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Append(ctx, resourcestore.Ref(id), reg.Version, stored); err != nil {
			t.Fatal(err)
		}
		cmdID := newID()
		r, err := c.AssignAssetTag(ctx, api.AssignAssetTag{Target: api.Target{Envelope: api.Envelope{CommandID: cmdID}, AggregateID: id.String()}, AssetTag: "AT-1"})
		written := eventsByCommand(eventsOf(t, st, id.String()))[cmdID]
		if retries == 0 {
			e := wantError(t, err, api.CodeConflict, api.KindConcurrency)
			if e.Details["expected"] != float64(reg.Version) {
				t.Fatalf("details %v", e.Details)
			}
			if len(written) != 0 {
				t.Fatalf("refused command wrote %d events", len(written))
			}
		} else {
			if err != nil {
				t.Fatal(err)
			}
			if len(written) != 1 || r.Version != written[0].Sequence || r.Version != reg.Version+2 {
				t.Fatalf("reply %+v, stored %+v", r, written)
			}
			if n := in.counter(t, in.svc.metrics.retries); n != 1 {
				t.Fatalf("retries %v, want 1", n)
			}
		}
		if n := in.counter(t, in.svc.metrics.conflicts); n != 1 {
			t.Fatalf("conflicts %v, want 1", n)
		}
		_ = in.svc.Shutdown(ctx)
	}
}

func decode(t testing.TB, recs []jetstore.RecordedEvent) []cr.Event {
	t.Helper()
	out := make([]cr.Event, len(recs))
	for i, r := range recs {
		e, err := resourcestore.FromStore(r)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = e
	}
	return out
}

// TestStoreUnavailable removes the event stream under a running instance: commands and queries
// get 503 unavailable, never a success.
func TestStoreUnavailable(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	in := startInstance(t, srv.ClientURL(), withOptions(func(o *Options) { o.RequestTimeout = 2 * time.Second }))
	c := newClient(t, srv.ClientURL(), api.WithRetries(0))
	ctx := testCtx(t)
	reg, err := c.Register(ctx, api.Register{Hostname: "web-1", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(in.nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(context.Background(), jetstore.DefaultStream); err != nil {
		t.Fatal(err)
	}
	_, err = c.AssignOwner(ctx, api.AssignOwner{Target: api.Target{AggregateID: reg.AggregateID}, OwnerID: newID()})
	wantError(t, err, api.CodeUnavailable, api.KindUnavailable)
	_, err = c.Get(ctx, api.Get{AggregateID: newID()})
	wantError(t, err, api.CodeUnavailable, api.KindUnavailable)
	if !api.Retryable(err) {
		t.Fatal("503 is not retryable")
	}
}
