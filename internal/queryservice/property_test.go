package queryservice

import (
	"fmt"
	"testing"

	"github.com/cim-infra/registry/pkg/api"
)

// TestModelEqualsFold: for random valid histories, at every checkpoint the model's list of
// everything equals the fold of each resource's events, field by field: on an instance that
// follows the writes live, and on one started from the stream at that point.
func TestModelEqualsFold(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			e := newEnv(t, seed, 60)
			live := e.startReady(testOptions())
			for checkpoint := range 4 {
				e.write(150)
				e.waitSeq(live, e.head)
				rows, page := e.listAll(api.List{Limit: 37})
				if page.AsOfSequence < e.head {
					t.Fatalf("checkpoint %d: as_of_sequence %d, below the head %d the list waited for", checkpoint, page.AsOfSequence, e.head)
				}
				expectEqualFold(t, rows, e.states, e.version)
			}
			// A new instance replays the whole stream.
			fresh := e.startReady(testOptions())
			if fresh.svc.Model().Sequence() < e.head {
				t.Fatalf("ready at sequence %d, below the head %d at its start", fresh.svc.Model().Sequence(), e.head)
			}
			if err := live.shutdown(); err != nil {
				t.Fatal(err)
			}
			rows, _ := e.listAll(api.List{Limit: api.MaxListLimit})
			expectEqualFold(t, rows, e.states, e.version)
		})
	}
}

// TestKilledMidCatchUp: an instance killed while it builds its model leaves nothing behind that
// a new instance depends on; the new one equals the fold.
func TestKilledMidCatchUp(t *testing.T) {
	e := newEnv(t, 81, 200)
	e.write(1500)
	victim := e.start(Options{BatchSize: 10})
	e.waitFor("the victim to apply something", func() bool { return victim.svc.Model().Sequence() > 0 })
	victim.nc.Close() // as a killed process: the connection goes at once
	if err := victim.shutdown(); err != nil {
		t.Logf("killed instance: %v", err)
	}
	e.write(100)
	in := e.startReady(testOptions())
	e.waitSeq(in, e.head)
	rows, _ := e.listAll(api.List{Limit: api.MaxListLimit})
	expectEqualFold(t, rows, e.states, e.version)
}
