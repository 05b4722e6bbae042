package commandservice

import (
	"fmt"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
)

// TestLongHistoryPaged pages through a history of 3,000 events with the largest and a small
// page size: every event comes once, in order, and More is false on the last page only.
func TestLongHistoryPaged(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	startInstance(t, srv.ClientURL())
	c := newClient(t, srv.ClientURL())
	ctx := testCtx(t)
	st := testStore(t, srv.ClientURL(), 1)

	r, err := c.Register(ctx, api.Register{Hostname: "long-1", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	id := mustUUID(t, r.AggregateID)
	// The history is appended in atomic batches straight to the store: 3,000 commands one
	// after the other would take long under -race.
	const total = 3000
	last := r.Version
	for n := 1; n < total; {
		batch := make([]cr.Event, 0, 1000)
		for ; n < total && len(batch) < cap(batch); n++ {
			cmd := uuid.New()
			batch = append(batch, cr.MetadataUpdated{EventMeta: cr.EventMeta{EventID: uuid.New(), AggregateID: id,
				CommandID: cmd, CorrelationID: cmd, CausationID: cmd, Timestamp: time.Now().UTC()},
				Key: "k", Value: fmt.Sprint(n)})
		}
		stored, err := resourcestore.ToStore(batch)
		if err != nil {
			t.Fatal(err)
		}
		res, err := st.Append(ctx, resourcestore.Ref(id), last, stored)
		if err != nil {
			t.Fatal(err)
		}
		last = res.LastSequence
	}
	want := eventsOf(t, st, id.String())
	if len(want) != total {
		t.Fatalf("stored %d events, want %d", len(want), total)
	}

	for _, limit := range []int{MaxHistoryLimit, 7} {
		q := api.History{AggregateID: id.String(), Limit: limit}
		var got []api.HistoryEvent
		pages := 0
		for {
			page, err := c.History(ctx, q)
			if err != nil {
				t.Fatalf("limit %d, after %d: %v", limit, q.AfterSequence, err)
			}
			pages++
			got = append(got, page.Events...)
			if len(page.Events) > limit || page.More != (len(got) < total) {
				t.Fatalf("limit %d, page %d: %d events, more %v, %d of %d so far", limit, pages, len(page.Events), page.More, len(got), total)
			}
			if !page.More {
				break
			}
			q.AfterSequence = page.NextAfter
		}
		if len(got) != total {
			t.Fatalf("limit %d: %d events, want %d", limit, len(got), total)
		}
		for i, e := range got {
			if e.Sequence != want[i].Sequence || e.ID != want[i].ID {
				t.Fatalf("limit %d, event %d: sequence %d id %s, want %d %s", limit, i, e.Sequence, e.ID, want[i].Sequence, want[i].ID)
			}
		}
		if wantPages := (total + limit - 1) / limit; pages != wantPages {
			t.Fatalf("limit %d: %d pages, want %d", limit, pages, wantPages)
		}
	}
}
