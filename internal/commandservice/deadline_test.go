package commandservice

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/testkit"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
)

// TestNoAppendAfterTheCallersDeadline holds a command in an instance (its resource locked, as by
// a command in front of it, or by a paused process) until its caller's time-out has passed,
// then lets it go: the command writes nothing, and a re-send with the same command id, with a
// new deadline, is applied once.
func TestNoAppendAfterTheCallersDeadline(t *testing.T) {
	t.Parallel()
	url := natstest.RunServer(t).ClientURL()
	ctx := testCtx(t)
	st := testStore(t, url, 1)
	in := startInstance(t, url)
	c := newClient(t, url)
	reg, err := c.Register(ctx, api.Register{Hostname: "late", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	e := in.svc.cache.acquire(uuid.MustParse(reg.AggregateID))
	cmd := api.AssignOwner{Target: targetOf(newID(), reg.AggregateID), OwnerID: newID()}
	impatient := newClient(t, url, api.WithTimeout(500*time.Millisecond), api.WithRetries(0))
	_, err = impatient.AssignOwner(ctx, cmd)
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.Kind != api.KindTimeout {
		in.svc.cache.release(e)
		t.Fatalf("command held in the instance: %v, want a time-out", err)
	}
	done := answered(t, in, api.CmdAssignOwner)
	in.svc.cache.release(e)
	testkit.WaitFor(t, ctx, "the held command's answer", func() bool { return answered(t, in, api.CmdAssignOwner) != done })
	if n := len(eventsByCommand(eventsOf(t, st, reg.AggregateID))[cmd.CommandID]); n != 0 {
		t.Fatalf("the command was written after its caller's deadline (%d events)", n)
	}
	if got := in.counter(t, in.svc.metrics.commands.WithLabelValues(api.CmdAssignOwner, OutcomeExpired)); got != 1 {
		t.Fatalf("%v commands counted as %s, want 1", got, OutcomeExpired)
	}
	r, err := c.AssignOwner(ctx, cmd)
	if err != nil || r.Duplicate || len(r.Events) != 1 {
		t.Fatalf("re-sent with a new deadline: %+v, %v", r, err)
	}
	checkExactlyOnce(t, st, reg.AggregateID)
}

// TestDeadlineOnReceipt: a request that reaches an instance after its deadline (it waited in a
// paused instance, or the header says so) is answered 503 deadline_exceeded and writes nothing;
// a deadline header that is not an RFC 3339 time is refused (400 naming the header); a request
// without the header has no deadline.
func TestDeadlineOnReceipt(t *testing.T) {
	t.Parallel()
	url := natstest.RunServer(t).ClientURL()
	ctx := testCtx(t)
	st := testStore(t, url, 1)
	release := make(chan struct{})
	held := make(chan struct{}, 1)
	in := startInstance(t, url, withHooks(&testHooks{received: func(command string) {
		if command == api.CmdAssignLocation {
			held <- struct{}{}
			<-release
		}
	}}))
	nc := natstest.Connect(t, url)
	c := newClient(t, url)
	reg, err := c.Register(ctx, api.Register{Hostname: "paused", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}

	// Paused with the request in hand until the caller has given up.
	cmd := api.AssignLocation{Target: targetOf(newID(), reg.AggregateID), LocationID: newID()}
	impatient := newClient(t, url, api.WithTimeout(500*time.Millisecond), api.WithRetries(0))
	_, err = impatient.AssignLocation(ctx, cmd)
	if !api.Retryable(err) {
		t.Fatalf("command held before processing: %v, want a time-out", err)
	}
	<-held
	done := answered(t, in, api.CmdAssignLocation)
	close(release)
	testkit.WaitFor(t, ctx, "the held command's answer", func() bool { return answered(t, in, api.CmdAssignLocation) != done })
	if got := in.counter(t, in.svc.metrics.commands.WithLabelValues(api.CmdAssignLocation, OutcomeExpired)); got != 1 {
		t.Fatalf("%v commands counted as %s, want 1", got, OutcomeExpired)
	}

	send := func(deadline string) *nats.Msg {
		t.Helper()
		body, _ := json.Marshal(api.AssignOwner{Target: targetOf(newID(), reg.AggregateID), OwnerID: newID()})
		msg := nats.NewMsg(api.CommandSubject(api.CmdAssignOwner))
		msg.Data = body
		if deadline != "" {
			msg.Header.Set(api.HeaderDeadline, deadline)
		}
		reply, err := nc.RequestMsg(msg, testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		return reply
	}
	if e := replyError(t, send(time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano))); e.Code != api.CodeUnavailable || e.Kind != api.KindDeadlineExceeded {
		t.Fatalf("deadline already passed: %+v", e)
	}
	for _, bad := range []string{"soon", "1765085400", "2026-12-07 05:30:00"} {
		if e := replyError(t, send(bad)); e.Code != api.CodeInvalid || e.Field != api.HeaderDeadline {
			t.Fatalf("deadline %q: %+v, want 400 naming %s", bad, e, api.HeaderDeadline)
		}
	}
	for _, ok := range []string{"", time.Now().Add(time.Minute).UTC().Format(time.RFC3339), time.Now().Add(time.Minute).Format(time.RFC3339Nano)} {
		msg := send(ok)
		var r api.CommandReply
		if msg.Header.Get("Nats-Service-Error-Code") != "" || json.Unmarshal(msg.Data, &r) != nil || len(r.Events) != 1 {
			t.Fatalf("deadline %q: %s", ok, msg.Data)
		}
	}
	if n := len(eventsByCommand(eventsOf(t, st, reg.AggregateID))[cmd.CommandID]); n != 0 {
		t.Fatalf("the command was written after its caller's deadline (%d events)", n)
	}
}

// answered counts the answered requests of a command, whatever their outcome.
func answered(t testing.TB, in *instance, command string) float64 {
	t.Helper()
	var n float64
	for _, o := range outcomes {
		n += in.counter(t, in.svc.metrics.commands.WithLabelValues(command, o))
	}
	return n
}
