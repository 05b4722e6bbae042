package commandservice

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
)

// TestOverloaded: with -max-in-flight 2 and two commands held after their append, a third
// command and a query are refused at once with 503 overloaded, unprocessed and counted; once
// the two finish, the instance takes requests again.
func TestOverloaded(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	url := srv.ClientURL()
	entered, release := make(chan struct{}, 2), make(chan struct{})
	in := startInstance(t, url, withOptions(func(o *Options) { o.MaxInFlight = 2 }),
		withHooks(&testHooks{afterAppend: func(uuid.UUID) {
			entered <- struct{}{}
			<-release
		}}))
	c := newClient(t, url)
	ctx := testCtx(t)

	var wg sync.WaitGroup
	held := make([]error, 2)
	for i := range held {
		wg.Go(func() {
			_, held[i] = c.Register(ctx, api.Register{Hostname: "held", ResourceType: "vm"})
		})
	}
	<-entered
	<-entered

	nc := natstest.Connect(t, url)
	refused := newID()
	body, _ := json.Marshal(api.Register{Hostname: "refused", ResourceType: "vm", Envelope: api.Envelope{CommandID: refused}})
	e := replyError(t, rawRequest(t, nc, api.CommandSubject(api.CmdRegister), body))
	if e.Code != api.CodeUnavailable || e.Kind != api.KindOverloaded || !strings.Contains(e.Message, "maximum of 2 requests") {
		t.Fatalf("command beyond -max-in-flight: %+v", e)
	}
	if !api.Retryable(e) {
		t.Fatalf("overloaded reply is not retryable: %+v", e)
	}
	body, _ = json.Marshal(api.Get{AggregateID: newID()})
	if e := replyError(t, rawRequest(t, nc, api.QuerySubject(api.QueryGet), body)); e.Code != api.CodeUnavailable || e.Kind != api.KindOverloaded {
		t.Fatalf("query beyond -max-in-flight: %+v", e)
	}
	if n := in.counter(t, in.svc.metrics.commands.WithLabelValues(api.CmdRegister, OutcomeOverload)); n != 1 {
		t.Fatalf("overloaded register count %v, want 1", n)
	}
	if n := in.counter(t, in.svc.metrics.queries.WithLabelValues(api.QueryGet, OutcomeOverload)); n != 1 {
		t.Fatalf("overloaded get count %v, want 1", n)
	}

	close(release)
	wg.Wait()
	for i, err := range held {
		if err != nil {
			t.Fatalf("held command %d: %v", i, err)
		}
	}
	if _, err := c.Register(ctx, api.Register{Hostname: "after", ResourceType: "vm"}); err != nil {
		t.Fatalf("after the held commands finished: %v", err)
	}
	// The refused register was not processed: its resource has no event.
	refusedID := mustUUID(t, refused)
	id := uuid.NewSHA1(registerNamespace, refusedID[:])
	if n := len(eventsOf(t, testStore(t, url, 1), id.String())); n != 0 {
		t.Fatalf("refused register wrote %d events", n)
	}
}
