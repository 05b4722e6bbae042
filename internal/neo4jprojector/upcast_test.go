package neo4jprojector

import (
	"fmt"
	"testing"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/projector"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
)

// TestDecodeUpcastsLegacyEvents: a ResourceRegistered of schema version 1 (upstream's, with a
// free-form type and a hostname in mixed case) as the consumer delivers it reaches the
// projection upcast, and projects the upcast type and hostname.
func TestDecodeUpcastsLegacyEvents(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	legacy := fmt.Appendf(nil, `{"event_version":1,"event_id":%q,"aggregate_id":%q,"timestamp":"2026-01-19T10:00:00Z","hostname":"Legacy-Box.Example.com","resource_type":"vm","correlation_id":%q,"causation_id":null}`,
		uuid.NewString(), id, uuid.NewString())
	h := nats.Header{}
	h.Set(jetstore.HeaderEventType, cr.EventTypeResourceRegistered)
	h.Set(jetstore.HeaderEventVersion, "1")
	events, err := decode([]projector.Delivery{{Sequence: 7, Subject: "cim.evt." + resourcestore.AggregateType + "." + id.String(), Header: h, Data: legacy}})
	if err != nil {
		t.Fatal(err)
	}
	rr, ok := events[0].Event.(cr.ResourceRegistered)
	if !ok || rr.Type != cr.ResourceTypeVirtualMachine || rr.Hostname.String() != "legacy-box.example.com" {
		t.Fatalf("decoded %#v, want a ResourceRegistered of a virtual_machine legacy-box.example.com", events[0].Event)
	}
	if _, effects, err := Project(State{}, events[0]); err != nil || len(effects) == 0 {
		t.Fatalf("projecting the legacy registration: %v effects, %v", len(effects), err)
	}
}
