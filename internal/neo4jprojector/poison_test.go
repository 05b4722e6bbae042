package neo4jprojector

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/projector"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

func TestPoisonEventsAreDeadLetteredAndEveryOtherEventApplied(t *testing.T) {
	e := newEnv(t, 17, 30)
	// An operator's constraint that a valid event can break: Neo4j then refuses that one event's
	// data inside a batch of good events.
	if _, err := neo4j.ExecuteQuery(e.ctx, e.driver,
		"CREATE CONSTRAINT test_unique_asset_tag IF NOT EXISTS FOR (n:ComputeResource) REQUIRE n.asset_tag IS UNIQUE",
		nil, neo4j.EagerResultTransformer); err != nil {
		t.Fatal(err)
	}
	e.appendEvents(200)
	var live []uuid.UUID
	for id, s := range e.hist.states {
		if s.Status() != cr.StatusDecommissioned {
			live = append(live, id)
		}
	}
	slices.SortFunc(live, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	if len(live) < 2 {
		t.Fatal("fewer than two resources in service")
	}
	tag := func(id uuid.UUID) cr.Command {
		return cr.AssignAssetTag{ID: id, AssetTag: "DUP-1",
			Meta: cr.CommandMeta{CommandID: uuid.New(), Timestamp: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}}
	}
	e.hist.manual = true
	e.hist.decide(t, tag(live[0]), e.storeFunc()) // fine: the first with this tag
	e.appendEvents(40)
	dup := e.hist.decide(t, tag(live[1]), e.storeFunc()) // refused by the constraint
	e.hist.skip[dup] = true
	e.appendEvents(40)
	// A message that is no event at all, on a resource subject.
	msg := nats.NewMsg("cim.evt.computeresource." + uuid.NewString())
	msg.Header.Set(jetstore.HeaderEventType, cr.EventTypeAssetTagAssigned)
	msg.Header.Set(jetstore.HeaderEventVersion, "1")
	msg.Data = []byte("{not json")
	ack, err := e.js.PublishMsg(e.ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	garbage := ack.Sequence
	e.hist.last, e.hist.skip[garbage] = garbage, true
	e.appendEvents(100)

	r := e.start(e.js, e.newSink(), testRunnerConfig())
	e.waitCheckpoint(e.hist.last)
	e.requireExactGraph()

	dlq, err := e.js.Stream(e.ctx, "CIM_DLQ")
	if err != nil {
		t.Fatal(err)
	}
	info, err := dlq.Info(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("%d dead letters, want 2", info.State.Msgs)
	}
	reasons := map[string]string{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := dlq.GetMsg(e.ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != "cim.dlq.neo4j" {
			t.Errorf("dead letter on %s, want cim.dlq.neo4j", m.Subject)
		}
		reasons[m.Header.Get(projector.HeaderDLQStreamSeq)] = m.Header.Get(projector.HeaderDLQReason)
	}
	if reason := reasons[strconv.FormatUint(dup, 10)]; !strings.Contains(reason, "ConstraintValidationFailed") {
		t.Errorf("the duplicate asset tag (sequence %d) dead-lettered with reason %q, want Neo4j's constraint error", dup, reason)
	}
	if reason := reasons[strconv.FormatUint(garbage, 10)]; reason == "" {
		t.Errorf("the undecodable message (sequence %d) was not dead-lettered: %v", garbage, reasons)
	}
	if got := metric(t, r.reg, "cim_projector_dead_letters_total"); got != 2 {
		t.Errorf("dead letters metric = %v, want 2", got)
	}
}

// A batch Neo4j refuses for a reason that is not its data must never be dead-lettered: here the
// credentials are wrong, and the whole batch waits.
func TestNeo4jRefusingEverythingDeadLettersNothing(t *testing.T) {
	e := newEnv(t, 18, 10)
	e.appendEvents(50)
	// A user that does not exist: Neo4j's rate limit of failed logins is per user, so the tests
	// that follow, as "neo4j", are not locked out.
	bad, err := neo4j.NewDriverWithContext(neo4jURI(t), neo4j.BasicAuth("no-such-user", "wrong password", ""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bad.Close(e.ctx) })
	r := e.start(e.js, NewSink(bad, SinkConfig{}, testLog(t)), testRunnerConfig())
	e.waitFor("apply errors", func() bool { return metric(t, r.reg, "cim_projector_apply_errors_total") >= 3 })
	if err := r.runner.Ready(e.ctx); err == nil {
		t.Error("ready while Neo4j refuses the credentials")
	}
	r.stop()
	if _, err := e.js.Stream(e.ctx, "CIM_DLQ"); err == nil {
		e.requireNoDeadLetters()
	} else if err != jetstream.ErrStreamNotFound {
		t.Fatal(err)
	}
}
