package accesscontrol

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/queryservice"
	"github.com/cim-infra/registry/internal/testkit"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// TestQueryServiceRunsUnderItsPermissions runs the query service under its user, with the command
// service writing the events, against a server that enforces the table, through every path the
// service takes: first start (the dead-letter stream and the snapshot bucket created), the model
// built and followed, dead letters in the catch-up and in the live tail, snapshots written and
// replaced, an ordered consumer replaced after the operator deleted it, a restart from the
// snapshot behind earlier dead letters, a snapshot large enough to be read with flow control,
// queries (trace reads its events from the stream) and micro discovery by the client. The server must refuse nothing, every allowed
// subject must be used, and then each forbidden action is refused. It needs no Neo4j, unlike
// TestServicesRunUnderTheirPermissions, which runs the other services.
func TestQueryServiceRunsUnderItsPermissions(t *testing.T) {
	w := newWorldOn(t, nil)
	logs := serviceLogs(t)
	w.startCommandService(logs)
	w.commands(0, 2)
	w.garbage() // met in the first instance's catch-up, before the dead-letter stream exists

	q := w.startQueryService(logs)
	w.requireListed()
	w.requireTraced()
	w.commands(2, 3)
	w.garbage() // met in the live tail
	w.commands(3, 4)
	w.requireListed()
	w.requireQueryDeadLetters(2)
	w.waitQuerySnapshotAt(w.head())
	w.commands(4, 5)
	w.requireListed()
	w.waitQuerySnapshotAt(w.head()) // replaces the first: its chunks are purged

	// The operator deletes the instance's ordered consumer: nats.go makes the next one.
	w.deleteOrderedConsumers()
	w.commands(5, 6)
	w.requireListed()

	q.stop(t)
	w.startQueryService(logs) // from the snapshot, behind the last dead letter
	w.commands(6, 7)
	w.requireListed()
	w.requireTraced()
	w.requireQueryDeadLetters(2)
	w.requireLargeSnapshot(UserQueryService, querySnapshots)
	w.discoverQueryService()

	if v := w.log.Violations(); len(v) > 0 {
		t.Fatalf("the server refused %d actions of the services:\n%s", len(v), strings.Join(v, "\n"))
	}
	u, _ := Lookup(UserQueryService)
	if grants := w.log.Unused([]User{u})[UserQueryService]; len(grants) > 0 {
		t.Errorf("%s never used: %s", UserQueryService, strings.Join(grants, ", "))
	}
	t.Run("refused", func(t *testing.T) {
		c := w.as[UserQueryService]
		for _, r := range queryServiceRefusals() {
			t.Run(r.what, func(t *testing.T) {
				c.refused(t, w.ctx, r.kind, r.subject, func(ctx context.Context) error { return r.action(ctx, c) })
			})
		}
	})
}

// queryServiceRefusals is what the query service's user must not do: write anything of the
// registry's, touch the other services' consumers, buckets or dead letters, answer the command
// service's queries, or read other users' replies.
func queryServiceRefusals() []refusal {
	var out []refusal
	for _, name := range durables {
		out = append(out,
			publishes("take over consumer "+name, "$JS.API.CONSUMER.CREATE."+events+"."+name, func(ctx context.Context, c *conn) error {
				_, err := c.js.CreateOrUpdateConsumer(ctx, events, jetstream.ConsumerConfig{Durable: name, FilterSubject: "cim.evt.>"})
				return err
			}),
			publishes("pull from consumer "+name, "$JS.API.CONSUMER.MSG.NEXT."+events+"."+name,
				rawAPI("$JS.API.CONSUMER.MSG.NEXT."+events+"."+name, `{"batch":1}`)),
			publishes("delete consumer "+name, "$JS.API.CONSUMER.DELETE."+events+"."+name, func(ctx context.Context, c *conn) error {
				return c.js.DeleteConsumer(ctx, events, name)
			}),
		)
	}
	return append(out, sendCommand, publishEvent, claimKey, deleteEvents, purgeEvents, deleteEvent, reconfigEvents,
		newConsumer, deleteDLQ, purgeDLQ,
		publishes("read the last event of a subject", "$JS.API.DIRECT.GET."+events+".cim.evt.computeresource.x",
			rawAPI("$JS.API.DIRECT.GET."+events+".cim.evt.computeresource.x", ``)),
		publishes("read events through the stream leader", "$JS.API.STREAM.MSG.GET."+events,
			rawAPI("$JS.API.STREAM.MSG.GET."+events, `{"seq":1}`)),
		publishes("answer in the command service's place", "cim.qry.computeresource.get", rawAPI("cim.qry.computeresource.get", `{}`)),
		publishes("forge a command result", "$KV.CIM_COMMAND_RESULTS.", rawAPI("$KV.CIM_COMMAND_RESULTS.a.b", `{}`)),
		publishes("write the other services' dead letters", "cim.dlq.neo4j", rawAPI("cim.dlq.neo4j", `{}`)),
		publishes("write to the metrics snapshot bucket", "$O.CIM_PROJECTOR_METRICS.", rawAPI("$O.CIM_PROJECTOR_METRICS.M.x", `{}`)),
		publishes("delete its own snapshot bucket", "$JS.API.STREAM.DELETE.OBJ_"+querySnapshots, func(ctx context.Context, c *conn) error {
			return c.js.DeleteObjectStore(ctx, querySnapshots)
		}),
		subscribes("cim.cmd.>"), subscribes("cim.evt.>"),
		subscribes("cim.qry.computeresource.get"), subscribes("cim.qry.computeresource.*"),
		subscribes("_INBOX.>"), subscribes(inbox(UserClient)), subscribes(inbox(UserCommandService)),
		subscribes(inbox(UserProjectorMetrics)),
	)
}

func (w *world) startQueryService(logs zerolog.Logger) *service {
	t := w.t
	var cfg queryservice.Config
	cfg.RegisterFlags(flag.NewFlagSet("query-service", flag.ContinueOnError))
	cfg.NATS.URL, cfg.NATS.User, cfg.NATS.Password = w.url, UserQueryService, password(UserQueryService)
	cfg.NATS.InboxPrefix = InboxPrefix(UserQueryService)
	cfg.HTTP.Addr = testkit.FreeAddr(t)
	cfg.Options.SnapshotInterval = 100 * time.Millisecond
	w.metrics = "http://" + cfg.HTTP.Addr + "/metrics"
	return runService(t, "query-service", func(ctx context.Context) error {
		return queryservice.Run(ctx, cfg, logs.With().Str("service", "query-service").Logger())
	})
}

// requireListed asks the query service, as the client, for every resource of the organization
// as of the stream's head, and requires exactly those registered.
func (w *world) requireListed() {
	t := w.t
	rows, err := w.client.ListAll(w.ctx, api.List{Consistency: api.Consistency{MinSequence: w.head(), WaitMillis: 10000},
		Filter: api.Filter{OrganizationIDs: []string{w.org}}})
	if err != nil {
		t.Fatalf("list as %s: %v (server refusals: %v)", UserClient, err, w.log.Violations())
	}
	if len(rows) != len(w.ids) {
		t.Fatalf("list as %s: %d resources, want %d", UserClient, len(rows), len(w.ids))
	}
}

// requireTraced registers a resource outside the organization under a correlation id of its
// own, as the client, and requires trace to give its event, read by the query service from the
// stream.
func (w *world) requireTraced() {
	t := w.t
	correlation := uuid.NewString()
	reg, err := w.client.Register(w.ctx, api.Register{Envelope: api.Envelope{CorrelationID: correlation},
		Hostname: "traced-" + strconv.Itoa(len(w.ids)) + ".example.com", ResourceType: "virtual_machine"})
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	tr, err := w.client.Trace(w.ctx, api.Trace{CorrelationID: correlation,
		Consistency: api.Consistency{MinSequence: reg.Version, WaitMillis: 10000}})
	if err != nil {
		t.Fatalf("trace as %s: %v (server refusals: %v)", UserClient, err, w.log.Violations())
	}
	if len(tr.Events) != 1 || tr.Events[0].AggregateID != reg.AggregateID || tr.Events[0].Sequence != reg.Version {
		t.Fatalf("trace as %s: %+v, want the registration of %s at %d", UserClient, tr, reg.AggregateID, reg.Version)
	}
}

// requireQueryDeadLetters waits until the query service's dead-letter subject holds n messages,
// and requires no more.
func (w *world) requireQueryDeadLetters(n uint64) {
	subject := "cim.dlq." + UserQueryService
	count := func() uint64 {
		dlq, err := w.as[UserOperator].js.Stream(w.ctx, dlq)
		if err != nil {
			return 0
		}
		info, err := dlq.Info(w.ctx, jetstream.WithSubjectFilter(subject))
		if err != nil {
			return 0
		}
		return info.State.Subjects[subject]
	}
	waitFor(w.t, w.ctx, w.log, fmt.Sprintf("%d dead letters on %s", n, subject), func() bool { return count() >= n })
	if got := count(); got != n {
		w.t.Errorf("%d dead letters on %s, want %d", got, subject, n)
	}
}

// waitQuerySnapshotAt waits until the stored snapshot of the model stands at seq.
func (w *world) waitQuerySnapshotAt(seq uint64) {
	obs, err := w.as[UserOperator].js.ObjectStore(w.ctx, querySnapshots)
	waitFor(w.t, w.ctx, w.log, "the snapshot bucket", func() bool {
		if err != nil {
			obs, err = w.as[UserOperator].js.ObjectStore(w.ctx, querySnapshots)
		}
		return err == nil
	})
	waitFor(w.t, w.ctx, w.log, "a model snapshot at "+strconv.FormatUint(seq, 10), func() bool {
		info, err := obs.GetInfo(w.ctx, "model")
		return err == nil && info.Metadata["sequence"] == strconv.FormatUint(seq, 10)
	})
}

// deleteOrderedConsumers deletes, as the operator, every consumer of the event stream: the
// query service's ordered consumer.
func (w *world) deleteOrderedConsumers() {
	t := w.t
	stream, err := w.as[UserOperator].js.Stream(w.ctx, events)
	if err != nil {
		t.Fatal(err)
	}
	names := stream.ConsumerNames(w.ctx)
	deleted := 0
	for name := range names.Name() {
		if !strings.HasPrefix(name, queryservice.ServiceName+"-") {
			continue
		}
		if err := stream.DeleteConsumer(w.ctx, name); err != nil {
			t.Fatalf("delete consumer %s: %v", name, err)
		}
		deleted++
	}
	if names.Err() != nil || deleted == 0 {
		t.Fatalf("no ordered consumer of the query service to delete (%v)", names.Err())
	}
}

// discoverQueryService asks the query service who it is, as `nats micro ls|info|stats` does, as
// the client; and reads its /readyz.
func (w *world) discoverQueryService() {
	for _, verb := range []string{"PING", "INFO", "STATS"} {
		subject := "$SRV." + verb + "." + api.QueryServiceName
		msg, err := w.as[UserClient].nc.RequestWithContext(w.ctx, subject, nil)
		if err != nil || !strings.Contains(string(msg.Data), api.QueryServiceName) {
			w.t.Fatalf("%s as %s: %v", subject, UserClient, err)
		}
	}
	ready := strings.TrimSuffix(w.metrics, "/metrics") + "/readyz"
	if code, body := testkit.HTTPGet(ready); code != http.StatusOK {
		w.t.Errorf("query-service %s: %d %s", ready, code, body)
	}
}
