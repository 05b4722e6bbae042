package queryservice

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// register writes the registration of a new resource and returns its id and the sequence.
func (e *env) register(hostname string, meta cr.CommandMeta) (uuid.UUID, uint64) {
	e.t.Helper()
	h, err := cr.ParseHostname(hostname)
	if err != nil {
		e.t.Fatal(err)
	}
	id := uuid.New()
	return id, e.do(cr.RegisterResource{Meta: meta, ID: id, Hostname: h, Type: cr.ResourceTypeVirtualMachine})
}

func newMeta(t time.Time) cr.CommandMeta {
	id := uuid.New()
	return cr.CommandMeta{CommandID: id, CorrelationID: id, Timestamp: t}
}

// TestPagingWhileWritesGoOn pages through lists while registrations and changes are written
// between the pages: every row that existed at the first page, matched the filter and kept its
// sort value until the last page appears exactly once.
func TestPagingWhileWritesGoOn(t *testing.T) {
	e := newEnv(t, 21, 120)
	e.write(600)
	in := e.startReady(testOptions())
	clock := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		orderBy string
		filter  api.Filter
	}{
		{"hostname", api.Filter{}},
		{"-updated_at", api.Filter{}},
		{"version", api.Filter{}},
		{"-hostname", api.Filter{Statuses: []string{"active", "maintenance"}}},
		{"created_at", api.Filter{HostnamePrefix: "host-"}},
	} {
		func() {
			e.waitSeq(in, e.head)
			before := map[string]api.Resource{}
			for _, r := range e.expected() {
				if oracle(c.filter, r) {
					before[r.ID] = r
				}
			}
			seen := map[string]int{}
			q := api.List{Filter: c.filter, OrderBy: c.orderBy, Limit: 11}
			for page := 0; ; page++ {
				var p api.ResourcePage
				q.MinSequence = e.head
				e.query(api.QueryList, q, &p)
				for _, r := range p.Resources {
					seen[r.ID]++
				}
				if p.NextCursor == "" {
					break
				}
				q.Cursor = p.NextCursor
				if page >= 10 {
					continue // stop writing, or a list sorted by version would never end
				}
				// Between pages: new resources (some sort before the cursor, some after) and
				// changes to existing ones.
				for i := range 3 {
					clock = clock.Add(time.Second)
					e.register(fmt.Sprintf("%c-page%d-%d.example.com", 'a'+rune((page*3+i)%26), page, i), newMeta(clock))
				}
				e.write(15)
			}
			key := orderKey(strings.TrimPrefix(c.orderBy, "-"))
			after := map[string]api.Resource{}
			for _, r := range e.expected() {
				after[r.ID] = r
			}
			kept := 0
			for id, r0 := range before {
				r1 := after[id]
				if !oracle(c.filter, r1) || key(r0, r1) != 0 {
					continue
				}
				kept++
				if seen[id] != 1 {
					t.Fatalf("order %s: row %s kept its sort value and was listed %d times", c.orderBy, id, seen[id])
				}
			}
			if kept < len(before)/3 {
				t.Fatalf("order %s: only %d of %d rows kept their sort value: the test checks too little", c.orderBy, kept, len(before))
			}
			for id, n := range seen {
				if n > 1 && slices.Contains([]string{"hostname", "-hostname", "created_at"}, c.orderBy) {
					t.Fatalf("order %s: row %s listed %d times though its sort value never changes", c.orderBy, id, n)
				}
			}
		}()
	}
}

// TestMinSequenceAcrossInstances: a query with a write's sequence as min_sequence sees that
// write, whichever of two instances answers; one whose model is behind waits for it; a sequence
// the model does not reach in time gets 503 "behind" with the model's position.
func TestMinSequenceAcrossInstances(t *testing.T) {
	e := newEnv(t, 31, 50)
	e.write(300)
	a := e.startReady(testOptions())
	b := e.startReady(testOptions())
	clock := time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)
	for i := range 40 {
		clock = clock.Add(time.Second)
		host := fmt.Sprintf("ryw-%d.example.com", i)
		id, seq := e.register(host, newMeta(clock))
		var p api.ResourcePage
		e.query(api.QueryList, api.List{Filter: api.Filter{Hostname: host}, Consistency: api.Consistency{MinSequence: seq}}, &p)
		if len(p.Resources) != 1 || p.Resources[0].ID != id.String() || p.AsOfSequence < seq {
			t.Fatalf("write %d at sequence %d not read back: %+v", i, seq, p)
		}
	}
	for name, in := range map[string]*instance{"a": a, "b": b} {
		if n := testutil.ToFloat64(in.svc.metrics.requests.WithLabelValues(api.QueryList, "ok")); n == 0 {
			t.Fatalf("instance %s answered no list: the test did not reach both instances", name)
		}
	}

	// Ahead of the stream: 503 behind, with the position.
	e.waitSeq(a, e.head)
	e.waitSeq(b, e.head)
	apiErr := e.queryError(api.QueryCount, api.Count{By: "status", Consistency: api.Consistency{MinSequence: e.head + 100, WaitMillis: 30}})
	if apiErr.Code != api.CodeUnavailable || apiErr.Kind != api.KindBehind {
		t.Fatalf("error %+v, want 503 behind", apiErr)
	}
	if applied, _ := apiErr.Details["applied"].(float64); uint64(applied) != e.head {
		t.Fatalf("details %v: applied should be the head %d", apiErr.Details, e.head)
	}
	if want, _ := apiErr.Details["min_sequence"].(float64); uint64(want) != e.head+100 {
		t.Fatalf("details %v: min_sequence should be %d", apiErr.Details, e.head+100)
	}

	// A query waiting for events not yet written is answered once they are.
	target := e.head + 5
	var wg sync.WaitGroup
	var got api.Counts
	var reqErr error
	var replyErr *api.Error
	wg.Go(func() {
		replyErr, reqErr = request(e.ctx, e.nc, api.QueryCount, api.Count{By: "status",
			Consistency: api.Consistency{MinSequence: target, WaitMillis: 20000}}, &got)
	})
	// The request is waiting once an instance counts it in flight.
	e.waitFor("the query to wait", func() bool {
		return testutil.ToFloat64(a.svc.metrics.inFlight)+testutil.ToFloat64(b.svc.metrics.inFlight) == 1
	})
	e.write(5)
	wg.Wait()
	if reqErr != nil || replyErr != nil {
		t.Fatalf("waiting query: %v %v", reqErr, replyErr)
	}
	if got.AsOfSequence < target {
		t.Fatalf("answered at %d, before min_sequence %d", got.AsOfSequence, target)
	}
}

// TestTraceAcrossAggregates: the events of one correlation id on several resources come back
// in stream order with their command and causation ids; others are left out.
func TestTraceAcrossAggregates(t *testing.T) {
	e := newEnv(t, 41, 20)
	e.write(50)
	in := e.startReady(testOptions())
	ts := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	correlation := uuid.New()
	first := cr.CommandMeta{CommandID: uuid.New(), CorrelationID: correlation, Timestamp: ts}
	r1, s1 := e.register("trace-1.example.com", first)
	e.write(10) // unrelated
	second := cr.CommandMeta{CommandID: uuid.New(), CorrelationID: correlation, CausationID: first.CommandID, Timestamp: ts.Add(time.Second)}
	r2, s2 := e.register("trace-2.example.com", second)
	third := cr.CommandMeta{CommandID: uuid.New(), CorrelationID: correlation, CausationID: second.CommandID, Timestamp: ts.Add(2 * time.Second)}
	s3 := e.do(cr.AssignOrganization{Meta: third, ID: r1, OrganizationID: cr.OrganizationID(uuid.New())})
	e.write(10)
	e.waitSeq(in, e.head)

	var tr api.TraceReply
	e.query(api.QueryTrace, api.Trace{CorrelationID: correlation.String()}, &tr)
	want := []struct {
		seq        uint64
		typ        string
		agg        uuid.UUID
		cmd, cause uuid.UUID
	}{
		{s1, cr.EventTypeResourceRegistered, r1, first.CommandID, first.CommandID},
		{s2, cr.EventTypeResourceRegistered, r2, second.CommandID, first.CommandID},
		{s3, cr.EventTypeOrganizationAssigned, r1, third.CommandID, second.CommandID},
	}
	if tr.CorrelationID != correlation.String() || len(tr.Events) != len(want) || tr.AsOfSequence < e.head {
		t.Fatalf("trace %+v, want %d events", tr, len(want))
	}
	for i, w := range want {
		g := tr.Events[i]
		if g.Sequence != w.seq || g.Type != w.typ || g.AggregateID != w.agg.String() || g.AggregateType != "computeresource" ||
			g.CommandID != w.cmd.String() || g.CausationID != w.cause.String() || g.ID == "" || g.Timestamp.IsZero() {
			t.Fatalf("event %d: %+v, want %+v", i, g, w)
		}
	}
	var none api.TraceReply
	e.query(api.QueryTrace, api.Trace{CorrelationID: uuid.NewString()}, &none)
	if none.Events == nil || len(none.Events) != 0 {
		t.Fatalf("trace of an unknown correlation: %+v, want an empty list", none)
	}
}
