package accesscontrol

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/commandservice"
	"github.com/cim-infra/registry/internal/metricsprojector"
	"github.com/cim-infra/registry/internal/neo4jprojector"
	"github.com/cim-infra/registry/internal/neo4jtest"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/internal/testkit"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/rs/zerolog"
)

// world is the end-to-end test's running system: the server, the services under their users,
// and connections of the test's own as each user.
type world struct {
	t       *testing.T
	ctx     context.Context
	url     string
	log     *serverLog
	driver  neo4j.DriverWithContext
	client  *api.Client
	as      map[string]*conn
	ids     []string
	org     string
	metrics string // base URL of projector-metrics' /metrics
	// unchanged is a command that changed nothing, and would change something now.
	unchanged api.AssignLocation
}

// TestServicesRunUnderTheirPermissions runs the three services under the table's users against
// a server that enforces it, drives them as the client, and requires every projection to be
// complete and the server to have refused nothing: the table is sufficient. The services' rarer
// paths run too: dead letters (in the metrics projector's replay and in both consumers), the
// metrics snapshot written, replaced and read back after a restart, and the Neo4j rebuild.
func TestServicesRunUnderTheirPermissions(t *testing.T) {
	w := newWorld(t)
	w.runAll()
	if v := w.log.Violations(); len(v) > 0 {
		t.Fatalf("the server refused %d actions of the services:\n%s", len(v), strings.Join(v, "\n"))
	}
	// Least privilege: every subject the table allows was used (the query service's grants by
	// TestQueryServiceRunsUnderItsPermissions).
	ran := slices.DeleteFunc(Table(), func(u User) bool { return u.Name == UserQueryService })
	for user, grants := range w.log.Unused(ran) {
		t.Errorf("%s never used: %s", user, strings.Join(grants, ", "))
	}
	t.Run("refused", w.checkRefusals)
}

func newWorld(t *testing.T) *world { return newWorldOn(t, neo4jtest.Acquire(t)) }

// newWorldOn is newWorld with the Neo4j driver given: nil for a world without projector-neo4j.
func newWorldOn(t *testing.T, driver neo4j.DriverWithContext) *world {
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	t.Cleanup(cancel)
	node, log := startServer(t)
	w := &world{t: t, ctx: ctx, url: node.ClientURL(), log: log, driver: driver, as: map[string]*conn{}, org: uuid.NewString()}
	for _, u := range Table() {
		w.as[u.Name] = connectAs(t, w.url, u.Name)
	}
	client, err := api.NewClient(w.as[UserClient].nc, api.WithTimeout(20*time.Second), api.WithRetries(50),
		api.WithRetryBackoff(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	w.client = client
	return w
}

func (w *world) runAll() {
	t := w.t
	logs := serviceLogs(t)
	commands := w.startCommandService(logs)
	w.commands(0, 3)
	// An event no projector can read, before they start: projector-metrics meets it in its replay.
	w.garbage()

	neo := w.startNeo4j(logs, false) // creates the dead-letter stream
	waitFor(t, w.ctx, w.log, "the dead-letter stream", func() bool {
		_, err := w.as[UserOperator].js.Stream(w.ctx, "CIM_DLQ")
		return err == nil
	})
	metrics := w.startMetrics(logs)
	w.commands(3, 5)
	w.garbage() // met by both consumers
	w.commands(5, 6)
	w.waitProjected()
	w.requireProjections()
	w.waitSnapshotAt(w.head())

	// The final snapshot replaces the last one; a restart reads it back.
	w.commands(6, 7)
	w.waitProjected()
	w.requireDeadLetters(2, 2)
	metrics.stop(t)
	neo.stop(t)
	commands.stop(t)
	w.startCommandService(logs)
	// A cold instance answers the retry of a command that changed nothing from the results bucket.
	if reply, err := w.client.AssignLocation(w.ctx, w.unchanged); err != nil || len(reply.Events) != 0 || !reply.Duplicate {
		t.Fatalf("retry of the unchanged location, on a new instance: %+v, %v", reply, err)
	}
	// Without its dead-letter stream, projector-metrics creates it this time.
	if err := w.as[UserOperator].js.DeleteStream(w.ctx, "CIM_DLQ"); err != nil {
		t.Fatal(err)
	}
	w.startMetrics(logs)
	waitFor(t, w.ctx, w.log, "the dead-letter stream", func() bool {
		_, err := w.as[UserOperator].js.Stream(w.ctx, "CIM_DLQ")
		return err == nil
	})
	w.startNeo4j(logs, true) // -rebuild: resets its consumer to the first event and replays into an emptied graph
	w.commands(7, 8)
	w.waitProjected()
	w.requireProjections()
	// projector-metrics resumed from its snapshot, past both; the rebuild met them again.
	w.requireDeadLetters(0, 2)
	w.requireLeaderReads()
	w.requireLargeSnapshot(UserProjectorMetrics, metricsprojector.DefaultBucket)
	w.discover()
}

// discover asks the command service who it is, as `nats micro ls|info|stats` does, as the client.
func (w *world) discover() {
	for _, verb := range []string{"PING", "INFO", "STATS"} {
		subject := "$SRV." + verb + "." + api.ServiceName
		msg, err := w.as[UserClient].nc.RequestWithContext(w.ctx, subject, nil)
		if err != nil || !strings.Contains(string(msg.Data), api.ServiceName) {
			w.t.Fatalf("%s as %s: %v", subject, UserClient, err)
		}
	}
}

// requireLargeSnapshot writes, reads back and deletes a snapshot-sized object of several
// megabytes in bucket, as user, with the object store calls the services make: a large model's
// snapshot is read with flow control, which this test's small snapshots never need.
func (w *world) requireLargeSnapshot(user, bucket string) {
	t, ctx := w.t, w.ctx
	obs, err := w.as[user].js.ObjectStore(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 16<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if _, err := obs.PutBytes(ctx, "accesscontrol-large", data); err != nil {
		t.Fatalf("put a large object as %s: %v", user, err)
	}
	got, err := obs.GetBytes(ctx, "accesscontrol-large")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read a large object back as %s: %d bytes, %v", user, len(got), err)
	}
	if err := obs.Delete(ctx, "accesscontrol-large"); err != nil {
		t.Fatalf("delete a large object as %s: %v", user, err)
	}
}

func (w *world) startCommandService(logs zerolog.Logger) *service {
	t := w.t
	var cfg commandservice.Config
	cfg.RegisterFlags(flag.NewFlagSet("command-service", flag.ContinueOnError))
	cfg.NATS.URL, cfg.NATS.User, cfg.NATS.Password = w.url, UserCommandService, password(UserCommandService)
	cfg.NATS.InboxPrefix = InboxPrefix(UserCommandService)
	cfg.HTTP.Addr = testkit.FreeAddr(t)
	cfg.RequestTimeout = 20 * time.Second
	return runService(t, "command-service", func(ctx context.Context) error {
		return commandservice.Run(ctx, cfg, logs.With().Str("service", "command-service").Logger())
	})
}

func (w *world) startMetrics(logs zerolog.Logger) *service {
	t := w.t
	var cfg metricsprojector.Config
	cfg.RegisterFlags(flag.NewFlagSet("projector-metrics", flag.ContinueOnError))
	cfg.NATS.URL, cfg.NATS.User, cfg.NATS.Password = w.url, UserProjectorMetrics, password(UserProjectorMetrics)
	cfg.NATS.InboxPrefix = InboxPrefix(UserProjectorMetrics)
	cfg.HTTP.Addr = testkit.FreeAddr(t)
	cfg.Options.FetchWait = 100 * time.Millisecond
	cfg.Options.SnapshotInterval = 100 * time.Millisecond
	w.metrics = "http://" + cfg.HTTP.Addr + "/metrics"
	return runService(t, "projector-metrics", func(ctx context.Context) error {
		return metricsprojector.Run(ctx, cfg, logs.With().Str("service", "projector-metrics").Logger())
	})
}

func (w *world) startNeo4j(logs zerolog.Logger, rebuild bool) *service {
	t := w.t
	var cfg neo4jprojector.Config
	cfg.RegisterFlags(flag.NewFlagSet("projector-neo4j", flag.ContinueOnError))
	cfg.NATS.URL, cfg.NATS.User, cfg.NATS.Password = w.url, UserProjectorNeo4j, password(UserProjectorNeo4j)
	cfg.NATS.InboxPrefix = InboxPrefix(UserProjectorNeo4j)
	cfg.HTTP.Addr = testkit.FreeAddr(t)
	cfg.Neo4jURI, cfg.Neo4jUser, cfg.Neo4jPassword = os.Getenv(neo4jtest.EnvURI), os.Getenv(neo4jtest.EnvUser), os.Getenv(neo4jtest.EnvPassword)
	cfg.FetchWait = 100 * time.Millisecond
	cfg.Rebuild = rebuild
	return runService(t, "projector-neo4j", func(ctx context.Context) error {
		return neo4jprojector.Run(ctx, cfg, logs.With().Str("service", "projector-neo4j").Logger())
	})
}

// commands registers resources from to to (indexes), assigns each to the organization and a
// location, activates it, and reads it back with both queries, as the client.
func (w *world) commands(from, to int) {
	t, ctx := w.t, w.ctx
	for i := from; i < to; i++ {
		reg, err := w.client.Register(ctx, api.Register{Hostname: fmt.Sprintf("web-%02d.example.com", i), ResourceType: "virtual_machine"})
		if err != nil {
			t.Fatalf("register: %v", err)
		}
		id := reg.AggregateID
		w.ids = append(w.ids, id)
		target := api.Target{AggregateID: id}
		if _, err := w.client.AssignOrganization(ctx, api.AssignOrganization{Target: target, OrganizationID: w.org}); err != nil {
			t.Fatalf("assign organization: %v", err)
		}
		location := uuid.NewString()
		if _, err := w.client.AssignLocation(ctx, api.AssignLocation{Target: target, LocationID: location}); err != nil {
			t.Fatalf("assign location: %v", err)
		}
		if _, err := w.client.ChangeStatus(ctx, api.ChangeStatus{Target: target, Status: "active"}); err != nil {
			t.Fatalf("activate: %v", err)
		}
		// Claims its asset tag (its hostname was claimed by the register).
		if _, err := w.client.AssignAssetTag(ctx, api.AssignAssetTag{Target: target, AssetTag: fmt.Sprintf("ASSET-%02d", i)}); err != nil {
			t.Fatalf("assign asset tag: %v", err)
		}
		res, err := w.client.Get(ctx, api.Get{AggregateID: id})
		if err != nil || res.Status != "active" || res.OrganizationID != w.org {
			t.Fatalf("get %s = %+v, %v", id, res, err)
		}
		hist, err := w.client.AllHistory(ctx, api.History{AggregateID: id})
		if err != nil || len(hist) != 5 {
			t.Fatalf("history of %s: %d events, %v", id, len(hist), err)
		}
		// A command that changes nothing, then its retry once it would change something: the
		// service records the first result in its results bucket and answers the retry from
		// there.
		again := api.AssignLocation{Target: api.Target{Envelope: api.Envelope{CommandID: uuid.NewString()}, AggregateID: id}, LocationID: location}
		if reply, err := w.client.AssignLocation(ctx, again); err != nil || len(reply.Events) != 0 {
			t.Fatalf("unchanged location: %+v, %v", reply, err)
		}
		if _, err := w.client.AssignLocation(ctx, api.AssignLocation{Target: target, LocationID: uuid.NewString()}); err != nil {
			t.Fatalf("move: %v", err)
		}
		if reply, err := w.client.AssignLocation(ctx, again); err != nil || len(reply.Events) != 0 || !reply.Duplicate {
			t.Fatalf("retry of the unchanged location: %+v, %v", reply, err)
		}
		w.unchanged = again
	}
}

// garbage appends, as the operator, a message on a resource subject that is no event.
func (w *world) garbage() {
	msg := nats.NewMsg("cim.evt.computeresource." + uuid.NewString())
	msg.Header.Set(jetstore.HeaderEventType, "AssetTagAssigned")
	msg.Header.Set(jetstore.HeaderEventVersion, "1")
	msg.Data = []byte("{not json")
	if _, err := w.as[UserOperator].js.PublishMsg(w.ctx, msg); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) head() uint64 {
	s, err := w.as[UserOperator].js.Stream(w.ctx, jetstore.DefaultStream)
	if err != nil {
		w.t.Fatal(err)
	}
	return s.CachedInfo().State.LastSeq
}

// metricsBody returns projector-metrics' /metrics page.
func (w *world) metricsBody() string {
	code, body := testkit.HTTPGet(w.metrics)
	if code != http.StatusOK {
		return ""
	}
	return body
}

func (w *world) checkpoint() uint64 {
	res, err := neo4j.ExecuteQuery(w.ctx, w.driver, "MATCH (c:ProjectionCheckpoint {name: 'neo4j'}) RETURN c.sequence AS seq", nil, neo4j.EagerResultTransformer)
	if err != nil || len(res.Records) == 0 {
		return 0
	}
	v, _ := res.Records[0].Get("seq")
	n, _ := v.(int64)
	return uint64(n)
}

// waitProjected waits until both projectors stand at the stream's head.
func (w *world) waitProjected() {
	head := w.head()
	want := metricsprojector.MetricStateSequence + " " + strconv.FormatUint(head, 10) + "\n"
	waitFor(w.t, w.ctx, w.log, "projector-metrics at "+strconv.FormatUint(head, 10), func() bool { return strings.Contains(w.metricsBody(), want) })
	waitFor(w.t, w.ctx, w.log, "projector-neo4j at "+strconv.FormatUint(head, 10), func() bool { return w.checkpoint() == head })
}

// waitSnapshotAt waits until projector-metrics has written a snapshot at seq.
func (w *world) waitSnapshotAt(seq uint64) {
	want := "cim_metrics_projector_snapshot_sequence " + strconv.FormatUint(seq, 10) + "\n"
	waitFor(w.t, w.ctx, w.log, "a metrics snapshot at "+strconv.FormatUint(seq, 10), func() bool { return strings.Contains(w.metricsBody(), want) })
}

// requireProjections checks the figures and the graph against the commands sent.
func (w *world) requireProjections() {
	t := w.t
	n := len(w.ids)
	want := fmt.Sprintf(`cim_resources{category="compute",resource_type="virtual_machine",status="active"} %d`+"\n", n)
	if body := w.metricsBody(); !strings.Contains(body, want) {
		t.Errorf("projector-metrics: /metrics lacks %q", strings.TrimSpace(want))
	}
	res, err := neo4j.ExecuteQuery(w.ctx, w.driver, `MATCH (r:ComputeResource {status: 'active'})-[:BELONGS_TO]->(:Organization {id: $org})
MATCH (r)-[:LOCATED_AT]->(:Location) RETURN count(r) AS n`, map[string]any{"org": w.org}, neo4j.EagerResultTransformer)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := res.Records[0].Get("n")
	if got != int64(n) {
		t.Errorf("projector-neo4j: %v active resources in the organization with a location, want %d", got, n)
	}
}

// requireDeadLetters checks how many dead letters each projector wrote.
func (w *world) requireDeadLetters(metrics, neo uint64) {
	t := w.t
	dlq, err := w.as[UserOperator].js.Stream(w.ctx, "CIM_DLQ")
	if err != nil {
		t.Fatal(err)
	}
	info, err := dlq.Info(w.ctx, jetstream.WithSubjectFilter("cim.dlq.>"))
	if err != nil {
		t.Fatal(err)
	}
	for subject, want := range map[string]uint64{"cim.dlq.metrics": metrics, "cim.dlq.neo4j": neo} {
		if got := info.State.Subjects[subject]; got != want {
			t.Errorf("%d dead letters on %s, want %d", got, subject, want)
		}
	}
}

// requireLeaderReads loads a resource as the command service does on a replicated stream, and
// after an append conflict: through the stream leader ($JS.API.STREAM.MSG.GET), not a direct get.
// The test's stream has one replica, where the service never needs that read otherwise.
func (w *world) requireLeaderReads() {
	t := w.t
	store, err := jetstore.New(w.as[UserCommandService].js, jetstore.Config{Replicas: 3}, jetstore.WithUpcasters(resourcestore.Upcasters()...))
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := store.Load(w.ctx, resourcestore.Ref(uuid.MustParse(w.ids[0])))
	if err != nil || len(loaded.Events) != 6 {
		t.Fatalf("load through the leader as %s: %d events, %v", UserCommandService, len(loaded.Events), err)
	}
}
