package faults

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/commandservice"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// door is a running command service on a single server, with a registered resource, a raw
// connection to send anything, and the stream to check that refusals wrote nothing.
type door struct {
	t      *testing.T
	nc     *nats.Conn
	stream jetstream.Stream
	id     string
}

func newDoor(t *testing.T) *door {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := natstest.RunServer(t).ClientURL()
	svcConn := natstest.Connect(t, url)
	svc, err := commandservice.New(ctx, svcConn, jetstore.Config{}, commandservice.DefaultOptions(), zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
	nc := natstest.Connect(t, url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	d := &door{t: t, nc: nc}
	if d.stream, err = js.Stream(ctx, jetstore.DefaultStream); err != nil {
		t.Fatal(err)
	}
	c, err := api.NewClient(nc)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Register(ctx, api.Register{Hostname: "door.example.com", ResourceType: "virtual_machine"})
	if err != nil {
		t.Fatal(err)
	}
	d.id = r.AggregateID
	return d
}

func (d *door) msgs() uint64 {
	d.t.Helper()
	info, err := d.stream.Info(context.Background())
	if err != nil {
		d.t.Fatal(err)
	}
	return info.State.Msgs
}

// refused sends body to subject and checks for a 400 naming the reason, and that nothing was
// written; it returns the error reply.
func (d *door) refused(subject string, body []byte) *api.Error {
	d.t.Helper()
	before := d.msgs()
	msg, err := d.nc.Request(subject, body, 20*time.Second)
	if err != nil {
		d.t.Fatalf("%s (%d bytes): no reply: %v", subject, len(body), err)
	}
	if msg.Header.Get(micro.ErrorCodeHeader) != strconv.Itoa(api.CodeInvalid) {
		d.t.Fatalf("%s (%.80q...): reply %q (code %q), want a 400", subject, body, msg.Data, msg.Header.Get(micro.ErrorCodeHeader))
	}
	var e api.Error
	if err := json.Unmarshal(msg.Data, &e); err != nil || e.Code != api.CodeInvalid || e.Kind == "" || e.Message == "" {
		d.t.Fatalf("%s: error body %q (%v)", subject, msg.Data, err)
	}
	if after := d.msgs(); after != before {
		d.t.Fatalf("%s: refused with %s, yet the stream went from %d to %d messages", subject, e.Kind, before, after)
	}
	d.alive()
	return &e
}

// alive checks that the service still answers.
func (d *door) alive() {
	d.t.Helper()
	body, _ := json.Marshal(api.Get{AggregateID: d.id})
	msg, err := d.nc.Request(api.QuerySubject(api.QueryGet), body, 20*time.Second)
	if err != nil || msg.Header.Get(micro.ErrorCodeHeader) != "" {
		d.t.Fatalf("the service no longer answers a get: %v %q", err, msg.Data)
	}
}

func allSubjects() []string {
	var out []string
	for _, name := range api.Commands() {
		out = append(out, api.CommandSubject(name))
	}
	return append(out, api.QuerySubject(api.QueryGet), api.QuerySubject(api.QueryHistory))
}

// TestOversizedRequests: a body at NATS's max payload is refused by the service as too large;
// one over it never leaves the client (the server would close the connection) and the service
// is unaffected.
func TestOversizedRequests(t *testing.T) {
	t.Parallel()
	d := newDoor(t)
	max := int(d.nc.MaxPayload())
	for _, subject := range allSubjects() {
		at := []byte(`{"aggregate_id":"` + d.id + `","key":"k","value":"` + strings.Repeat("x", max-200) + `"}`)
		at = append(at, strings.Repeat(" ", max-len(at))...)
		if e := d.refused(subject, at); e.Kind != api.KindRequestTooLarge {
			t.Errorf("%s at max payload (%d bytes): %s, want %s", subject, len(at), e.Kind, api.KindRequestTooLarge)
		}
		just := []byte(`{"aggregate_id":"` + d.id + `","value":"` + strings.Repeat("y", commandservice.DefaultMaxRequestBytes) + `"}`)
		if e := d.refused(subject, just); e.Kind != api.KindRequestTooLarge {
			t.Errorf("%s just over -max-request-bytes: %s, want %s", subject, e.Kind, api.KindRequestTooLarge)
		}
		over := make([]byte, max+1)
		if _, err := d.nc.Request(subject, over, time.Second); !errors.Is(err, nats.ErrMaxPayload) {
			t.Errorf("%s over max payload: %v, want %v", subject, err, nats.ErrMaxPayload)
		}
	}
	d.alive()
}

// TestMalformedRequests sends invalid UTF-8, deeply nested JSON, huge and negative numbers,
// and wrong types to every subject: each gets a 400 that names the reason, nothing is
// written, and the service goes on.
func TestMalformedRequests(t *testing.T) {
	t.Parallel()
	d := newDoor(t)
	depth := 20000 // beyond encoding/json's nesting limit (10000), within -max-request-bytes
	bodies := map[string]string{
		"invalid UTF-8 outside strings":   "{\"aggregate_id\":\"" + d.id + "\",\xff\xfe}",
		"invalid UTF-8 as the whole body": "\xff\xfe\xfd",
		"nested arrays":                   `{"aggregate_id":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`,
		"nested objects":                  strings.Repeat(`{"a":`, depth/2) + `1` + strings.Repeat(`}`, depth/2),
		"huge number as id":               `{"aggregate_id":1e999999}`,
		"huge integer as id":              `{"aggregate_id":` + strings.Repeat("9", 5000) + `}`,
		"number where a string goes":      `{"aggregate_id":"` + d.id + `","command_id":12345678901234567890123}`,
		"sequence past uint64":            `{"aggregate_id":"` + d.id + `","as_of_sequence":18446744073709551616,"after_sequence":18446744073709551616,"status":1}`,
		"negative sequence":               `{"aggregate_id":"` + d.id + `","as_of_sequence":-1,"after_sequence":-1,"limit":-1,"status":-1}`,
		"huge limit":                      `{"aggregate_id":"` + d.id + `","limit":1e308,"status":1e308}`,
		"NUL bytes":                       "{\"aggregate_id\":\"" + d.id + "\x00\"}",
		"two objects":                     `{"aggregate_id":"` + d.id + `"}{"aggregate_id":"` + d.id + `"}`,
	}
	for _, body := range bodies {
		for _, subject := range allSubjects() {
			d.refused(subject, []byte(body))
		}
	}
}

// TestInvalidUTF8InStrings sends strings holding invalid UTF-8 inside valid JSON. encoding/json
// replaces each invalid byte with U+FFFD while decoding, so such a value cannot be stored as
// sent: the service must refuse it rather than store a different value than the client sent.
func TestInvalidUTF8InStrings(t *testing.T) {
	t.Parallel()
	d := newDoor(t)
	cases := map[string]string{
		api.CmdUpdateMetadata:     `{"aggregate_id":"` + d.id + `","key":"k","value":"v\xff"}`,
		api.CmdAssignAssetTag:     `{"aggregate_id":"` + d.id + `","asset_tag":"T\xfe"}`,
		api.CmdRegister:           `{"aggregate_id":"` + uuid.NewString() + `","hostname":"h\xff.example.com","resource_type":"virtual_machine"}`,
		api.CmdSetHardwareDetails: `{"aggregate_id":"` + d.id + `","manufacturer":"D\xc3"}`,
	}
	for name, body := range cases {
		d.refused(api.CommandSubject(name), []byte(body))
	}
}
