package queryservice

import (
	"fmt"
	"testing"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestModelReadsLegacyEventsUpcast: a ResourceRegistered of schema version 1 (upstream's, with
// a free-form type and a hostname in mixed case) in the stream reaches the model upcast, as the
// command service's store reads it.
func TestModelReadsLegacyEventsUpcast(t *testing.T) {
	e := newEnv(t, 71, 5)
	e.write(5)
	id := uuid.New()
	legacy := fmt.Appendf(nil, `{"event_version":1,"event_id":%q,"aggregate_id":%q,"timestamp":"2026-01-19T10:00:00Z","hostname":"Legacy-Box.Example.com","resource_type":"vm","correlation_id":%q,"causation_id":null}`,
		uuid.NewString(), id, uuid.NewString())
	ev := jetstore.Event{ID: uuid.NewString(), Type: cr.EventTypeResourceRegistered, SchemaVersion: 1, Data: legacy}
	res, err := e.store.Append(e.ctx, resourcestore.Ref(id), 0, []jetstore.Event{ev})
	if err != nil {
		t.Fatal(err)
	}
	e.head = res.LastSequence

	a := e.startReady(testOptions())
	e.waitSeq(a, e.head)
	rows, _ := e.listAll(api.List{Filter: api.Filter{ResourceTypes: []string{cr.ResourceTypeVirtualMachine.String()}, Hostname: "legacy-box.example.com"}})
	if len(rows) != 1 || rows[0].ID != id.String() || rows[0].Hostname != "legacy-box.example.com" || rows[0].Version != res.LastSequence {
		t.Fatalf("rows %+v, want the legacy resource %s upcast (virtual_machine, legacy-box.example.com)", rows, id)
	}
	if n := testutil.ToFloat64(a.svc.metrics.undecodable); n != 0 {
		t.Fatalf("%v events not applied, want 0", n)
	}
}
