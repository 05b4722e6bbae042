package metricsprojector

import (
	"fmt"
	"strings"
	"testing"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
)

// TestLegacyEventsCountUpcast: a ResourceRegistered of schema version 1 (upstream's, with the
// free-form type "vm") is counted under its upcast type, virtual_machine, whether the start-up
// replay or the consumer reads it.
func TestLegacyEventsCountUpcast(t *testing.T) {
	e := newEnv(t, 13, 5)
	appendLegacy := func() uint64 {
		t.Helper()
		id := uuid.New()
		legacy := fmt.Appendf(nil, `{"event_version":1,"event_id":%q,"aggregate_id":%q,"timestamp":"2026-01-19T10:00:00Z","hostname":"Legacy-Box.Example.com","resource_type":"vm","correlation_id":%q,"causation_id":null}`,
			uuid.NewString(), id, uuid.NewString())
		ev := jetstore.Event{ID: uuid.NewString(), Type: cr.EventTypeResourceRegistered, SchemaVersion: 1, Data: legacy}
		res, err := e.store.Append(e.ctx, resourcestore.Ref(id), 0, []jetstore.Event{ev})
		if err != nil {
			t.Fatal(err)
		}
		e.head = res.LastSequence
		return res.LastSequence
	}
	// resources counts the resources of the upcast type, and fails on any of the legacy one.
	resources := func(in *instance) float64 {
		t.Helper()
		var n float64
		for name, v := range gatherFigures(t, in.reg) {
			if !strings.HasPrefix(name, MetricResources+"{") {
				continue
			}
			if strings.Contains(name, `resource_type="vm"`) {
				t.Fatalf("figure %s = %v counts the legacy type", name, v)
			}
			if strings.Contains(name, `resource_type="`+cr.ResourceTypeVirtualMachine.String()+`"`) {
				n += v
			}
		}
		return n
	}

	appendLegacy() // read by the replay
	in := e.start(defaultTestOptions(), nil)
	e.waitReady(in)
	e.waitSeq(in, e.head)
	if n := resources(in); n != 1 {
		t.Fatalf("after the replay: %v virtual machines, want 1", n)
	}
	e.waitSeq(in, appendLegacy()) // read by the consumer
	if n := resources(in); n != 2 {
		t.Fatalf("after the consumer: %v virtual machines, want 2", n)
	}
	if n := value(t, in.reg, metricReplayDead) + value(t, in.reg, "cim_projector_dead_letters_total"); n != 0 {
		t.Fatalf("%v events dead-lettered, want 0", n)
	}
	in.shutdown(t)
}
