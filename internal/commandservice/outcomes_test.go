package commandservice

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestRefusalIsTheResult: a command refused by the domain and re-sent with the same command id
// gets its first refusal, and writes nothing, even when the state has changed so that the
// command would now be applied; on the instance that refused it and on another one, on R1 and
// R3.
func TestRefusalIsTheResult(t *testing.T) {
	t.Parallel()
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			t.Parallel()
			url := topo.url(t)
			ctx := testCtx(t)
			st := testStore(t, url, topo.replicas)
			first := startInstance(t, url, withReplicas(topo.replicas))
			nc := natstest.Connect(t, url)
			c := newClient(t, url)
			reg, err := c.Register(ctx, api.Register{Hostname: "refused-1", ResourceType: "vm"})
			if err != nil {
				t.Fatal(err)
			}
			policy := newID()

			// remove_policy of a policy the resource does not have: refused.
			remove := api.RemovePolicy{Target: targetOf(newID(), reg.AggregateID), PolicyID: policy}
			firstRefusal := commandError(t, nc, api.CmdRemovePolicy, remove)
			if firstRefusal.Code != api.CodeConflict || firstRefusal.Kind != api.KindPolicyNotFound {
				t.Fatalf("remove_policy of a policy never added: %+v", firstRefusal)
			}
			// The policy is added: the same command would now be applied.
			if _, err := c.AddPolicy(ctx, api.AddPolicy{Target: api.Target{AggregateID: reg.AggregateID}, PolicyID: policy}); err != nil {
				t.Fatal(err)
			}
			again := commandError(t, nc, api.CmdRemovePolicy, remove)
			if mustJSON(t, again) != mustJSON(t, firstRefusal) {
				t.Fatalf("re-sent refused command: %+v, first refusal %+v", again, firstRefusal)
			}
			// Another instance, with a cold cache, answers the same.
			_ = first.svc.Shutdown(ctx)
			startInstance(t, url, withReplicas(topo.replicas))
			again = commandError(t, nc, api.CmdRemovePolicy, remove)
			if mustJSON(t, again) != mustJSON(t, firstRefusal) {
				t.Fatalf("re-sent refused command on another instance: %+v, first refusal %+v", again, firstRefusal)
			}
			if n := len(eventsByCommand(eventsOf(t, st, reg.AggregateID))[remove.CommandID]); n != 0 {
				t.Fatalf("the refused command wrote %d events when re-sent", n)
			}
			got, err := c.Get(ctx, api.Get{AggregateID: reg.AggregateID})
			if err != nil || len(got.Policies) != 1 {
				t.Fatalf("state after the re-sends: %+v, %v", got, err)
			}

			// A command to a resource not registered yet: 404, and 404 again once it is.
			id := newID()
			owner := api.AssignOwner{Target: targetOf(newID(), id), OwnerID: newID()}
			notRegistered := commandError(t, nc, api.CmdAssignOwner, owner)
			if notRegistered.Code != api.CodeNotFound {
				t.Fatalf("command to an unknown resource: %+v", notRegistered)
			}
			if _, err := c.Register(ctx, api.Register{AggregateID: id, Hostname: "refused-2", ResourceType: "vm"}); err != nil {
				t.Fatal(err)
			}
			if again := commandError(t, nc, api.CmdAssignOwner, owner); mustJSON(t, again) != mustJSON(t, notRegistered) {
				t.Fatalf("re-sent after the registration: %+v, first refusal %+v", again, notRegistered)
			}
			if n := len(eventsByCommand(eventsOf(t, st, id))[owner.CommandID]); n != 0 {
				t.Fatalf("the refused command wrote %d events when re-sent", n)
			}
		})
	}
}

// TestOnlyOwnCommandIDsAreRecorded: a refused command without a command id of its own cannot be
// re-sent, so its refusal is not recorded; one with its own id is, once however often re-sent.
func TestOnlyOwnCommandIDsAreRecorded(t *testing.T) {
	t.Parallel()
	url := natstest.RunServer(t).ClientURL()
	ctx := testCtx(t)
	in := startInstance(t, url)
	nc := natstest.Connect(t, url)
	c := newClient(t, url)
	reg, err := c.Register(ctx, api.Register{Hostname: "anonymous", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		e := commandError(t, nc, api.CmdRemovePolicy, api.RemovePolicy{Target: api.Target{AggregateID: reg.AggregateID}, PolicyID: newID()})
		if e.Kind != api.KindPolicyNotFound {
			t.Fatalf("refusal: %+v", e)
		}
	}
	if n := resultKeys(t, ctx, in); n != 0 {
		t.Fatalf("%d results recorded for commands without a command id", n)
	}
	own := api.RemovePolicy{Target: targetOf(newID(), reg.AggregateID), PolicyID: newID()}
	for range 3 {
		commandError(t, nc, api.CmdRemovePolicy, own)
	}
	if n := resultKeys(t, ctx, in); n != 1 {
		t.Fatalf("%d results recorded for one command id sent three times", n)
	}
	recorded := in.counter(t, in.svc.metrics.resultRecords.WithLabelValues("refusal", RecordRecorded))
	existing := in.counter(t, in.svc.metrics.resultRecords.WithLabelValues("refusal", RecordExisting))
	if recorded != 1 || existing != 2 {
		t.Fatalf("refusals: %v recorded, %v found recorded, want 1 and 2", recorded, existing)
	}
}

// TestResultsBucketFull floods an instance with refused commands, each with its own command
// id, against a small results bucket: the bucket stays within its limit, every command still
// gets its refusal (not an error of the bucket), the refusals not recorded are counted, and
// what was recorded before the bucket filled still answers its re-sends.
func TestResultsBucketFull(t *testing.T) {
	t.Parallel()
	url := natstest.RunServer(t).ClientURL()
	ctx := testCtx(t)
	const maxBytes = 4 << 10
	in := startInstance(t, url, withOptions(func(o *Options) { o.ResultsMaxBytes = maxBytes }))
	nc := natstest.Connect(t, url)
	c := newClient(t, url)
	reg, err := c.Register(ctx, api.Register{Hostname: "flooded", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	firstPolicy := newID()
	first := api.RemovePolicy{Target: targetOf(newID(), reg.AggregateID), PolicyID: firstPolicy}
	firstRefusal := commandError(t, nc, api.CmdRemovePolicy, first)
	const flood = 100
	for i := range flood {
		e := commandError(t, nc, api.CmdRemovePolicy, api.RemovePolicy{Target: targetOf(newID(), reg.AggregateID), PolicyID: newID()})
		if e.Kind != api.KindPolicyNotFound {
			t.Fatalf("refusal %d with the bucket filling: %+v", i, e)
		}
	}
	full := in.counter(t, in.svc.metrics.resultRecords.WithLabelValues("refusal", RecordBucketFull))
	recorded := in.counter(t, in.svc.metrics.resultRecords.WithLabelValues("refusal", RecordRecorded))
	if full == 0 || recorded+full != flood+1 {
		t.Fatalf("records: %v recorded, %v not for a full bucket, of %d refusals", recorded, full, flood+1)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, DefaultResultsBucket)
	if err != nil {
		t.Fatal(err)
	}
	status, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if status.Bytes() > maxBytes {
		t.Fatalf("the results bucket holds %d bytes, over its limit of %d", status.Bytes(), maxBytes)
	}
	if _, err := c.AddPolicy(ctx, api.AddPolicy{Target: api.Target{AggregateID: reg.AggregateID}, PolicyID: firstPolicy}); err != nil {
		t.Fatal(err)
	}
	if again := commandError(t, nc, api.CmdRemovePolicy, first); mustJSON(t, again) != mustJSON(t, firstRefusal) {
		t.Fatalf("re-sent refused command recorded before the bucket filled: %+v, first refusal %+v", again, firstRefusal)
	}
}

// TestCommandIDReused: a command id already used on a resource, sent again with another request
// (other values, or another command), is refused with command_id_reused and writes nothing,
// whatever the first outcome was (written, unchanged, refused); a re-send of the same request
// spelled differently is a duplicate.
func TestCommandIDReused(t *testing.T) {
	t.Parallel()
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			t.Parallel()
			url := topo.url(t)
			ctx := testCtx(t)
			st := testStore(t, url, topo.replicas)
			first := startInstance(t, url, withReplicas(topo.replicas))
			nc := natstest.Connect(t, url)
			c := newClient(t, url)
			reg, err := c.Register(ctx, api.Register{Hostname: "reused", ResourceType: "vm"})
			if err != nil {
				t.Fatal(err)
			}
			agg := reg.AggregateID
			if _, err := c.UpdateMetadata(ctx, api.UpdateMetadata{Target: api.Target{AggregateID: agg}, Key: "env", Value: "prod"}); err != nil {
				t.Fatal(err)
			}
			written, unchanged, refused := newID(), newID(), newID()
			policy := newID()
			send := func(subject string, body string) *nats.Msg {
				t.Helper()
				return rawRequest(t, nc, api.CommandSubject(subject), []byte(body))
			}
			firsts := []struct {
				name, subject, body string
			}{
				{"written", api.CmdAddPolicy, fmt.Sprintf(`{"command_id":%q,"aggregate_id":%q,"policy_id":%q}`, written, agg, policy)},
				{"unchanged", api.CmdUpdateMetadata, fmt.Sprintf(`{"command_id":%q,"aggregate_id":%q,"key":"env","value":"prod"}`, unchanged, agg)},
				{"refused", api.CmdRemovePolicy, fmt.Sprintf(`{"command_id":%q,"aggregate_id":%q,"policy_id":%q}`, refused, agg, newID())},
			}
			replies := map[string]string{}
			for _, f := range firsts {
				replies[f.name] = string(send(f.subject, f.body).Data)
			}
			before := eventsOf(t, st, agg)

			// The same requests, spelled differently: members reordered, white space, an
			// upper-case UUID, an escaped character.
			same := []struct {
				name, subject, body string
			}{
				{"written", api.CmdAddPolicy, fmt.Sprintf("{ \"policy_id\" : %q ,\n \"aggregate_id\":%q, \"command_id\":%q }", strings.ToUpper(policy), agg, written)},
				{"unchanged", api.CmdUpdateMetadata, fmt.Sprintf(`{"value":"pr\u006fd","key":"env","aggregate_id":%q,"command_id":%q}`, agg, unchanged)},
			}
			for _, s := range same {
				msg := send(s.subject, s.body)
				var r api.CommandReply
				if msg.Header.Get("Nats-Service-Error-Code") != "" || json.Unmarshal(msg.Data, &r) != nil || !r.Duplicate {
					t.Fatalf("%s: the same request spelled differently: %s, first reply %s", s.name, msg.Data, replies[s.name])
				}
			}

			// Other requests with the used command ids, on this instance and on a cold one.
			other := []struct {
				name, subject, body string
			}{
				{"written, other value", api.CmdAddPolicy, fmt.Sprintf(`{"command_id":%q,"aggregate_id":%q,"policy_id":%q}`, written, agg, newID())},
				{"written, other command", api.CmdRemovePolicy, fmt.Sprintf(`{"command_id":%q,"aggregate_id":%q,"policy_id":%q}`, written, agg, policy)},
				{"unchanged, other value", api.CmdUpdateMetadata, fmt.Sprintf(`{"command_id":%q,"aggregate_id":%q,"key":"env","value":"dev"}`, unchanged, agg)},
				{"unchanged, other command", api.CmdAssignAssetTag, fmt.Sprintf(`{"command_id":%q,"aggregate_id":%q,"asset_tag":"T-1"}`, unchanged, agg)},
				{"refused, other value", api.CmdRemovePolicy, fmt.Sprintf(`{"command_id":%q,"aggregate_id":%q,"policy_id":%q}`, refused, agg, policy)},
				{"refused, other command", api.CmdAddPolicy, fmt.Sprintf(`{"command_id":%q,"aggregate_id":%q,"policy_id":%q}`, refused, agg, newID())},
			}
			check := func(where string) {
				t.Helper()
				for _, o := range other {
					e := replyError(t, send(o.subject, o.body))
					if e.Code != api.CodeConflict || e.Kind != api.KindCommandIDReused || e.Field != "command_id" {
						t.Fatalf("%s, %s: %+v, want 409 %s", where, o.name, e, api.KindCommandIDReused)
					}
				}
				if after := eventsOf(t, st, agg); len(after) != len(before) {
					t.Fatalf("%s: %d events written by re-used command ids", where, len(after)-len(before))
				}
			}
			check("same instance")
			_ = first.svc.Shutdown(ctx)
			startInstance(t, url, withReplicas(topo.replicas))
			check("another instance")
		})
	}
}

// commandError sends a command that must fail and returns its error reply.
func commandError(t testing.TB, nc *nats.Conn, command string, req any) *api.Error {
	t.Helper()
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return replyError(t, rawRequest(t, nc, api.CommandSubject(command), body))
}

// resultKeys counts the records of the instance's results bucket.
func resultKeys(t testing.TB, ctx context.Context, in *instance) int {
	t.Helper()
	keys, err := in.svc.results.kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range keys.Keys() {
		n++
	}
	return n
}

// TestNewCommandIDHeader: a request that says its command id is new (api.HeaderNewCommandID)
// is not looked up in the results bucket, so a re-send that wrongly carries the header is
// decided afresh; without it, the re-send gets the first refusal.
func TestNewCommandIDHeader(t *testing.T) {
	t.Parallel()
	url := natstest.RunServer(t).ClientURL()
	ctx := testCtx(t)
	st := testStore(t, url, 1)
	startInstance(t, url)
	nc := natstest.Connect(t, url)
	c := newClient(t, url)
	reg, err := c.Register(ctx, api.Register{Hostname: "new-ids", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	policy := newID()
	remove := api.RemovePolicy{Target: targetOf(newID(), reg.AggregateID), PolicyID: policy}
	first := commandError(t, nc, api.CmdRemovePolicy, remove)
	if _, err := c.AddPolicy(ctx, api.AddPolicy{Target: api.Target{AggregateID: reg.AggregateID}, PolicyID: policy}); err != nil {
		t.Fatal(err)
	}
	if again := commandError(t, nc, api.CmdRemovePolicy, remove); mustJSON(t, again) != mustJSON(t, first) {
		t.Fatalf("re-sent without the header: %+v, first refusal %+v", again, first)
	}
	body, _ := json.Marshal(remove)
	msg := nats.NewMsg(api.CommandSubject(api.CmdRemovePolicy))
	msg.Data = body
	msg.Header.Set(api.HeaderNewCommandID, "true")
	reply, err := nc.RequestMsg(msg, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	var r api.CommandReply
	if reply.Header.Get("Nats-Service-Error-Code") != "" || json.Unmarshal(reply.Data, &r) != nil || len(r.Events) != 1 {
		t.Fatalf("re-sent with the header: %s, want the command decided afresh", reply.Data)
	}
	if n := len(eventsByCommand(eventsOf(t, st, reg.AggregateID))[remove.CommandID]); n != 1 {
		t.Fatalf("%d events of the command", n)
	}
}
