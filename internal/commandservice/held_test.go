package commandservice

import (
	"slices"
	"testing"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
)

// TestAggregateResults checks the results the aggregate keeps for duplicate detection: the
// events of each command id with their sequences, whether a command's events are contiguous
// (one atomic append) or, against expectation, not.
func TestAggregateResults(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	cmdA, cmdB := uuid.New(), uuid.New()
	event := func(cmd uuid.UUID, key string) cr.Event {
		return cr.MetadataUpdated{EventMeta: cr.EventMeta{EventID: uuid.New(), AggregateID: id, CommandID: cmd}, Key: key, Value: "v"}
	}
	history := []struct {
		e   cr.Event
		seq uint64
	}{
		{event(cmdA, "a1"), 3}, {event(cmdA, "a2"), 4}, // contiguous
		{event(cmdB, "b1"), 9},
		{event(cmdA, "a3"), 12}, // not contiguous with a1, a2
		{event(uuid.Nil, "legacy"), 13},
		{event(cmdA, "a4"), 20},
	}
	var a aggregate
	want := map[uuid.UUID][]api.EventRef{}
	for _, h := range history {
		a.record(h.e, h.seq)
		if cmd := h.e.Meta().CommandID; cmd != uuid.Nil {
			want[cmd] = append(want[cmd], api.EventRef{Type: h.e.EventType(), ID: h.e.Meta().EventID.String(), Sequence: h.seq})
		}
		for cmd, refs := range want {
			r, ok := a.result(cmd)
			if !ok || !slices.Equal(r.events, refs) || r.version != refs[len(refs)-1].Sequence {
				t.Fatalf("after sequence %d, command %s: %+v (%v), want %+v", h.seq, cmd, r, ok, refs)
			}
		}
	}
	if _, ok := a.result(uuid.New()); ok {
		t.Fatal("result of a command never applied")
	}
	if a.lastSeq != 20 {
		t.Fatalf("last sequence %d", a.lastSeq)
	}
}
