package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/config"
	"github.com/cim-infra/registry/internal/natsconn"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/nats-io/nats.go"
)

var (
	created = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	updated = time.Date(2026, 5, 1, 10, 5, 30, 500_000_000, time.UTC)
)

func TestRenderText(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		reply any
		want  string
	}{
		{"command reply", &api.CommandReply{AggregateID: id, Version: 7, Events: []api.EventRef{
			{Type: "OrganizationAssigned", ID: "e1", Sequence: 6}, {Type: "LocationAssigned", ID: "e2", Sequence: 7}}},
			"resource  " + id + "\n" +
				"version   7\n" +
				"event     OrganizationAssigned  seq 6  id e1\n" +
				"event     LocationAssigned      seq 7  id e2\n"},
		{"duplicate without events", &api.CommandReply{AggregateID: id, Version: 7, Duplicate: true},
			"resource   " + id + "\n" +
				"version    7\n" +
				"duplicate  yes: this command id was applied before; nothing was written now\n" +
				"events     none: nothing changed\n"},
		{"resource", &api.Resource{ID: id, Hostname: "web-01.example.com", ResourceType: "virtual_machine", Category: "compute",
			Status: "active", OrganizationID: uid, Policies: []string{"p1", "p2"}, Model: "R650",
			Metadata: map[string]string{"rack": "r12", "env": "prod"}, CreatedAt: created, UpdatedAt: updated, Version: 9},
			"id               " + id + "\n" +
				"hostname         web-01.example.com\n" +
				"type             virtual_machine (compute)\n" +
				"status           active\n" +
				"organization     " + uid + "\n" +
				"location         -\n" +
				"owner            -\n" +
				"account concept  -\n" +
				"policies         p1, p2\n" +
				"manufacturer     -\n" +
				"model            R650\n" +
				"serial number    -\n" +
				"asset tag        -\n" +
				"metadata         env=prod, rack=r12\n" +
				"created          2026-05-01T10:00:00Z\n" +
				"updated          2026-05-01T10:05:30.5Z\n" +
				"version          9\n"},
		{"history page", &api.HistoryPage{AggregateID: id, More: true, NextAfter: 2, Events: []api.HistoryEvent{
			{Sequence: 1, Type: "ResourceRegistered", SchemaVersion: 1, ID: "e1", CommandID: "c1", StoredAt: created,
				Data: json.RawMessage(`{"event_id":"e1","aggregate_id":"` + id + `","command_id":"c1","correlation_id":"c1","causation_id":"c1",
				  "timestamp":"2026-05-01T10:00:00Z","resource_type":"virtual_machine", "hostname": "web-01.example.com"}`)},
			{Sequence: 2, Type: "StatusChanged", SchemaVersion: 2, ID: "e2", StoredAt: updated, Data: json.RawMessage(`{"from_status":"provisioning","to_status":"active->"}`)},
			{Sequence: 3, Type: "Odd", SchemaVersion: 1, ID: "e3", StoredAt: updated, Data: json.RawMessage(`[1, 2]`)}}},
			"SEQ  TYPE                V  STORED AT               COMMAND ID  DATA\n" +
				`1    ResourceRegistered  1  2026-05-01T10:00:00Z    c1          {"hostname":"web-01.example.com","resource_type":"virtual_machine"}` + "\n" +
				`2    StatusChanged       2  2026-05-01T10:05:30.5Z  -           {"from_status":"provisioning","to_status":"active->"}` + "\n" +
				`3    Odd                 1  2026-05-01T10:05:30.5Z  -           [1, 2]` + "\n" +
				"(more events follow: --after 2, or --all)\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			if err := render(&b, OutputText, tc.reply); err != nil {
				t.Fatalf("render: %v", err)
			}
			if b.String() != tc.want {
				t.Errorf("text:\n%s\nwant:\n%s", b.String(), tc.want)
			}
		})
	}
}

// With -o json the output is the reply's wire JSON, which decodes back into an equal value.
func TestRenderJSON(t *testing.T) {
	t.Parallel()
	replies := []any{
		&api.CommandReply{AggregateID: id, Version: 7, Events: []api.EventRef{{Type: "AssetTagAssigned", ID: "e1", Sequence: 7}}},
		&api.Resource{ID: id, Hostname: "h", Status: "provisioning", Policies: []string{}, Metadata: map[string]string{}, CreatedAt: created, UpdatedAt: updated, Version: 1},
		&api.HistoryPage{AggregateID: id, Events: []api.HistoryEvent{{Sequence: 1, Type: "ResourceRegistered", SchemaVersion: 1, StoredAt: created, Data: json.RawMessage(`{"hostname":"h"}`)}}},
	}
	for _, reply := range replies {
		var b bytes.Buffer
		if err := render(&b, OutputJSON, reply); err != nil {
			t.Fatalf("render %T: %v", reply, err)
		}
		back := reflect.New(reflect.TypeOf(reply).Elem()).Interface()
		if err := json.Unmarshal(b.Bytes(), back); err != nil {
			t.Fatalf("%T: output is not JSON: %v\n%s", reply, err, b.String())
		}
		// Compare as compact JSON: -o json indents event data too.
		got, _ := json.Marshal(back)
		want, _ := json.Marshal(reply)
		if !bytes.Equal(got, want) {
			t.Errorf("%T: decoded\n%s\nwant\n%s", reply, got, want)
		}
	}
}

func TestExitCode(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{usageErrorf("--id is required"), ExitUsage},
		{&config.EnvError{Var: "NATS_CONNECT_TIMEOUT", Flag: "nats-connect-timeout", Value: "soon", Err: errors.New("bad")}, ExitUsage},
		{fmt.Errorf("%w: -nats-user", natsconn.ErrInvalidConfig), ExitUsage},
		{&api.Error{Code: 400, Kind: "invalid_field"}, ExitUsage},
		{fmt.Errorf("wrapped: %w", &api.Error{Code: 404, Kind: "not_registered"}), ExitNotFound},
		{&api.Error{Code: 409, Kind: "invalid_transition"}, ExitConflict},
		{&api.Error{Code: 503, Kind: "unavailable"}, ExitUnavailable},
		{fmt.Errorf("%w: %w", &api.Error{Code: 503, Kind: api.KindTimeout}, context.DeadlineExceeded), ExitUnavailable},
		{&api.Error{Code: 500, Kind: "internal"}, ExitError},
		{&api.Error{Code: 418, Kind: "teapot"}, ExitError},
		{&connectError{err: &natsconn.UnreachableError{Target: "nats://x", Attempts: 3, Err: nats.ErrNoServers}}, ExitUnavailable},
		{&connectError{err: nats.ErrAuthorization}, ExitError},
		{&connectError{err: fmt.Errorf("%w: -nats-tls-ca", natsconn.ErrInvalidConfig)}, ExitUsage},
		{&connectError{err: fmt.Errorf("natsconn: connect: %w", context.Canceled)}, ExitError},
		{fmt.Errorf("api: request: %w", nats.ErrMaxPayload), ExitUsage},
		{fmt.Errorf("api: request: %w", context.Canceled), ExitError},
		{errors.New("something else"), ExitError},
		{&rowsFailedError{failed: 1, rows: 3}, ExitRowsFailed},
	}
	for _, tc := range cases {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
