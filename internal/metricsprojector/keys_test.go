package metricsprojector

import (
	"testing"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/pkg/jetstore"
)

// The event stream also holds key messages (cim.key.>: claims and releases of hostnames and
// asset tags, written in the events' batches). They are no events: neither the durable consumer
// nor the start-up replay sees them, so nothing is dead-lettered and the figures are the fold's.
func TestKeyMessagesNeverReachTheProjector(t *testing.T) {
	e := newEnv(t, 13, 60)
	// The stream again, with the key subjects.
	if err := e.js.DeleteStream(e.ctx, DefaultStream); err != nil {
		t.Fatal(err)
	}
	store, err := jetstore.New(e.js, jetstore.Config{KeyPrefix: jetstore.DefaultKeyPrefix})
	if err != nil {
		t.Fatal(err)
	}
	natstest.CreateAfterDelete(t, func() error { return store.EnsureStream(e.ctx) })
	opts := defaultTestOptions()
	keys := 0
	write := func(n int) {
		t.Helper()
		for range n {
			c := e.g.Next()
			id := c.AggregateID()
			evs, err := cr.Decide(e.states[id], c)
			if err != nil {
				t.Fatalf("decide %s: %v", c.CommandName(), err)
			}
			var kopts []jetstore.AppendOption
			for _, k := range cr.KeyChanges(e.states[id], evs) {
				if k.Release {
					kopts = append(kopts, jetstore.Release(string(k.Space), k.Value))
				} else {
					kopts = append(kopts, jetstore.Claim(string(k.Space), k.Value))
				}
			}
			keys += len(kopts)
			stored, err := resourcestore.ToStore(evs)
			if err != nil {
				t.Fatal(err)
			}
			res, err := store.Append(e.ctx, resourcestore.Ref(id), e.last[id], stored, kopts...)
			if err != nil {
				t.Fatalf("append %s: %v", c.CommandName(), err)
			}
			e.last[id], e.head = res.LastSequence, res.LastSequence
			e.states[id] = cr.Fold(e.states[id], evs...)
			for _, ev := range evs {
				e.exp.count(ev)
			}
		}
		e.exp.fleetFrom(e.g.States())
	}

	write(300)
	if keys == 0 {
		t.Fatal("the history claimed no key: the test checks nothing")
	}
	in := e.start(opts, nil)
	e.waitSeq(in, e.head)
	e.exp.check(t, gatherFigures(t, in.reg))
	write(100) // the durable consumer's phase
	e.waitSeq(in, e.head)
	e.exp.check(t, gatherFigures(t, in.reg))
	in.shutdown(t)

	write(200) // the replay's phase, after a restart
	in = e.start(opts, nil)
	e.waitReady(in)
	e.waitSeq(in, e.head)
	e.exp.check(t, gatherFigures(t, in.reg))
	if got := value(t, in.reg, MetricEvents); got != e.exp.total() {
		t.Fatalf("events counted %v, written %v", got, e.exp.total())
	}
	if got := value(t, in.reg, "cim_projector_dead_letters_total"); got != 0 {
		t.Fatalf("%v dead letters, want none", got)
	}
	in.shutdown(t)
}
