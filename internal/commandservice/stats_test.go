package commandservice

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/micro"
)

// TestMicroStatsTellTheTruth reads an instance's statistics the way `nats micro stats` does,
// through $SRV.STATS: every request is counted on its endpoint, every error reply (refused on
// decoding, by the domain after a store read, as not registered) in num_errors with the last
// one in last_error, and processing_time covers the whole handling: it is at least the time a
// request was held waiting for its aggregate, and at least what the latency histogram observed.
func TestMicroStatsTellTheTruth(t *testing.T) {
	t.Parallel()
	url := natstest.RunServer(t).ClientURL()
	ctx := testCtx(t)
	in := startInstance(t, url)
	nc := natstest.Connect(t, url)
	c := newClient(t, url)
	reg, err := c.Register(ctx, api.Register{Hostname: "counted", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	send := func(command, body string) {
		t.Helper()
		rawRequest(t, nc, api.CommandSubject(command), []byte(body))
	}
	policyRequest := func(policy string) string {
		return `{"aggregate_id":"` + reg.AggregateID + `","policy_id":"` + policy + `"}`
	}
	send(api.CmdAddPolicy, policyRequest(newID()))                                      // ok
	send(api.CmdAddPolicy, `{"aggregate_id":"`+reg.AggregateID+`","policy_id":"nope"}`) // 400
	send(api.CmdAddPolicy, `{"aggregate_id":"`+newID()+`","policy_id":"`+newID()+`"}`)  // 404
	send(api.CmdRemovePolicy, policyRequest(newID()))                                   // 409, after a store read
	send(api.CmdRemovePolicy, `{`)                                                      // 400

	// A request held waiting for its aggregate for a while.
	const held = 300 * time.Millisecond
	e := in.svc.cache.acquire(uuid.MustParse(reg.AggregateID))
	done := make(chan struct{})
	go func() {
		defer close(done)
		send(api.CmdAddPolicy, policyRequest(newID()))
	}()
	for pinned := 0; pinned < 2; { // the request waits for the aggregate
		if ctx.Err() != nil {
			t.Fatal("the request never reached its aggregate")
		}
		time.Sleep(time.Millisecond)
		in.svc.cache.mu.Lock()
		pinned = e.pins
		in.svc.cache.mu.Unlock()
	}
	time.Sleep(held)
	in.svc.cache.release(e)
	<-done

	msg, err := nc.Request("$SRV.STATS."+api.ServiceName+"."+in.svc.micro.ID(), nil, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	var stats micro.Stats
	if err := json.Unmarshal(msg.Data, &stats); err != nil {
		t.Fatal(err)
	}
	if stats.Type != micro.StatsResponseType || stats.Name != api.ServiceName || stats.Started.IsZero() {
		t.Fatalf("stats identity: %s", msg.Data)
	}
	byName := map[string]*micro.EndpointStats{}
	for _, ep := range stats.Endpoints {
		byName[ep.Name] = ep
	}
	want := map[string]struct{ requests, errors int }{
		api.CmdRegister: {1, 0}, api.CmdAddPolicy: {4, 2}, api.CmdRemovePolicy: {2, 2}, api.CmdAssignOwner: {0, 0},
	}
	for name, w := range want {
		ep := byName[name]
		if ep == nil {
			t.Fatalf("no endpoint %s in %s", name, msg.Data)
		}
		if ep.NumRequests != w.requests || ep.NumErrors != w.errors {
			t.Errorf("%s: %d requests, %d errors, want %d and %d", name, ep.NumRequests, ep.NumErrors, w.requests, w.errors)
		}
		if w.requests > 0 && ep.AverageProcessingTime != ep.ProcessingTime/time.Duration(ep.NumRequests) {
			t.Errorf("%s: average %s of %s over %d requests", name, ep.AverageProcessingTime, ep.ProcessingTime, ep.NumRequests)
		}
	}
	if last := byName[api.CmdRemovePolicy].LastError; !strings.HasPrefix(last, "400:") {
		t.Errorf("last error of remove_policy %q, want the 400 sent last", last)
	}
	if last := byName[api.CmdAddPolicy].LastError; !strings.HasPrefix(last, "404:") {
		t.Errorf("last error of add_policy %q, want the 404 sent last", last)
	}
	if got := byName[api.CmdAddPolicy].ProcessingTime; got < held {
		t.Errorf("add_policy processing time %s, but one request waited %s for its aggregate", got, held)
	}
	for _, name := range []string{api.CmdAddPolicy, api.CmdRemovePolicy} {
		observed := time.Duration(histogramSum(t, in, name) * float64(time.Second))
		if got := byName[name].ProcessingTime; got < observed {
			t.Errorf("%s processing time %s, less than the %s the latency histogram observed", name, got, observed)
		}
	}
}

// histogramSum is the sum of the command latency histogram of one command.
func histogramSum(t *testing.T, in *instance, command string) float64 {
	t.Helper()
	families, err := in.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "cim_command_service_command_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "command" && l.GetValue() == command {
					return m.GetHistogram().GetSampleSum()
				}
			}
		}
	}
	t.Fatalf("no latency histogram for %s", command)
	return 0
}
