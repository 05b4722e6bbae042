package commandservice

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/pkg/api"
)

// TestCommandTimestamps: a command without a timestamp is stamped with the service's clock; one
// further than -max-clock-skew from it is refused (400 naming timestamp), at either side; within
// the skew, the time of a resource's events never goes back, so updated_at is never before
// created_at, whatever order the clients' timestamps come in.
func TestCommandTimestamps(t *testing.T) {
	t.Parallel()
	url := natstest.RunServer(t).ClientURL()
	ctx := testCtx(t)
	clock := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	const skew = 10 * time.Minute
	startInstance(t, url, withHooks(&testHooks{now: func() time.Time { return clock }}),
		withOptions(func(o *Options) { o.MaxClockSkew = skew }))
	nc := natstest.Connect(t, url)
	c := newClient(t, url)
	request := func(command, body string) *api.CommandReply {
		t.Helper()
		msg := rawRequest(t, nc, api.CommandSubject(command), []byte(body))
		if msg.Header.Get("Nats-Service-Error-Code") != "" {
			t.Fatalf("%s %s: %s", command, body, msg.Data)
		}
		var r api.CommandReply
		if err := json.Unmarshal(msg.Data, &r); err != nil {
			t.Fatal(err)
		}
		return &r
	}
	stamp := func(t time.Time) string { return t.Format(time.RFC3339Nano) }

	reg := request(api.CmdRegister, `{"hostname":"stamped","resource_type":"vm"}`)
	got, err := c.Get(ctx, api.Get{AggregateID: reg.AggregateID})
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.Equal(clock) || !got.UpdatedAt.Equal(clock) {
		t.Fatalf("command without a timestamp: created_at %s, updated_at %s, want the service's clock %s", got.CreatedAt, got.UpdatedAt, clock)
	}

	for _, ts := range []time.Time{
		time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		clock.Add(skew + time.Second), clock.Add(-skew - time.Second),
	} {
		body := fmt.Sprintf(`{"aggregate_id":%q,"key":"k","value":"v","timestamp":%q}`, reg.AggregateID, stamp(ts))
		e := replyError(t, rawRequest(t, nc, api.CommandSubject(api.CmdUpdateMetadata), []byte(body)))
		if e.Code != api.CodeInvalid || e.Field != "timestamp" {
			t.Fatalf("timestamp %s with the clock at %s: %+v, want 400 naming timestamp", ts, clock, e)
		}
	}

	// A registration stamped ahead of the clock, then commands stamped behind it and behind
	// each other: the events' time stays where it was.
	ahead := clock.Add(skew - time.Minute)
	reg = request(api.CmdRegister, fmt.Sprintf(`{"hostname":"ahead","resource_type":"vm","timestamp":%q}`, stamp(ahead)))
	request(api.CmdUpdateMetadata, fmt.Sprintf(`{"aggregate_id":%q,"key":"k","value":"1","timestamp":%q}`, reg.AggregateID, stamp(clock.Add(-skew+time.Minute))))
	got, err = c.Get(ctx, api.Get{AggregateID: reg.AggregateID})
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.Equal(ahead) || got.UpdatedAt.Before(got.CreatedAt) {
		t.Fatalf("created_at %s, updated_at %s after a command stamped before the registration", got.CreatedAt, got.UpdatedAt)
	}
	later := ahead.Add(30 * time.Second)
	request(api.CmdUpdateMetadata, fmt.Sprintf(`{"aggregate_id":%q,"key":"k","value":"2","timestamp":%q}`, reg.AggregateID, stamp(later)))
	request(api.CmdUpdateMetadata, fmt.Sprintf(`{"aggregate_id":%q,"key":"k","value":"3","timestamp":%q}`, reg.AggregateID, stamp(later.Add(-time.Second))))
	got, err = c.Get(ctx, api.Get{AggregateID: reg.AggregateID})
	if err != nil {
		t.Fatal(err)
	}
	if !got.UpdatedAt.Equal(later) {
		t.Fatalf("updated_at %s after a command stamped at %s and one a second before, want %s", got.UpdatedAt, later, later)
	}
}
