package commandservice

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/cim-infra/registry/internal/embedded"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/testkit"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"
)

// TestGracefulShutdown holds four commands in flight after their appends, shuts the instance
// down, and checks that it takes no new request, that the four complete with their replies,
// and that each reply's events are stored.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	url := srv.ClientURL()
	ctx := testCtx(t)
	const n = 4
	held := make(chan uuid.UUID, n)
	release := make(chan struct{})
	var holding sync.Map
	in := startInstance(t, url, withHooks(&testHooks{afterAppend: func(id uuid.UUID) {
		if _, ok := holding.Load(id); ok {
			held <- id
			<-release
		}
	}}))
	setup := newClient(t, url)
	var ids []string
	for i := range n {
		r, err := setup.Register(ctx, api.Register{Hostname: fmt.Sprintf("h%d", i), ResourceType: "vm"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.AggregateID)
	}
	type result struct {
		reply *api.CommandReply
		err   error
	}
	results := make(chan result, n)
	for _, id := range ids {
		cmdID := uuid.New()
		holding.Store(cmdID, true)
		go func() {
			c := newClient(t, url, api.WithRetries(0))
			r, err := c.AssignAssetTag(ctx, api.AssignAssetTag{Target: targetOf(cmdID.String(), id), AssetTag: "T"})
			results <- result{r, err}
		}()
	}
	for range n {
		<-held
	}

	shutdown := make(chan error, 1)
	go func() { shutdown <- in.svc.Shutdown(ctx) }()
	testkit.WaitFor(t, ctx, "the micro service to stop", in.svc.micro.Stopped)
	if err := in.nc.Flush(); err != nil { // the server has the unsubscriptions
		t.Fatal(err)
	}
	_, err := newClient(t, url, api.WithRetries(0)).AssignOwner(ctx, api.AssignOwner{Target: api.Target{AggregateID: ids[0]}, OwnerID: newID()})
	if e := asAPIError(t, err); e.Kind != api.KindNoResponders && e.Kind != api.KindShuttingDown {
		t.Fatalf("request after shutdown began: %v", err)
	}
	select {
	case err := <-shutdown:
		t.Fatalf("shutdown returned (%v) with requests in flight", err)
	default:
	}
	close(release)
	if err := <-shutdown; err != nil {
		t.Fatal(err)
	}
	st := testStore(t, url, 1)
	for range n {
		r := <-results
		if r.err != nil {
			t.Fatalf("request in flight during shutdown: %v", r.err)
		}
		stored := eventsByCommand(eventsOf(t, st, r.reply.AggregateID))
		found := false
		for _, evs := range stored {
			if len(evs) == 1 && evs[0].ID == r.reply.Events[0].ID && evs[0].Sequence == r.reply.Version {
				found = true
			}
		}
		if !found {
			t.Fatalf("reply %+v names events that are not stored", r.reply)
		}
	}
}

// TestRequestDeliveredWhileStopping: a request that reaches the handler after Shutdown began is
// not processed and gets a 503 shutting_down reply.
func TestRequestDeliveredWhileStopping(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	in := startInstance(t, srv.ClientURL())
	if err := in.svc.Shutdown(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	nc := natstest.Connect(t, srv.ClientURL())
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(api.AssignOwner{Target: api.Target{AggregateID: newID()}, OwnerID: newID()})
	// As the endpoint's subscription delivers a request it had buffered when it was drained.
	in.svc.micro.Handler(api.CmdAssignOwner)(&nats.Msg{Subject: api.CommandSubject(api.CmdAssignOwner), Reply: inbox, Data: body})
	msg, err := sub.NextMsg(testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if e := replyError(t, msg); e.Code != api.CodeUnavailable || e.Kind != api.KindShuttingDown {
		t.Fatalf("reply %+v", e)
	}
}

// TestDiscovery finds two instances through micro's $SRV.PING, $SRV.INFO and $SRV.STATS.
func TestDiscovery(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	url := srv.ClientURL()
	a, b := startInstance(t, url), startInstance(t, url)
	c := newClient(t, url)
	ctx := testCtx(t)
	if _, err := c.Register(ctx, api.Register{Hostname: "h", ResourceType: "vm"}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Register(ctx, api.Register{Hostname: "-", ResourceType: "vm"})
	wantError(t, err, api.CodeInvalid, api.KindInvalidField)

	nc := natstest.Connect(t, url)
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.PublishRequest("$SRV.PING."+api.ServiceName, inbox, nil); err != nil {
		t.Fatal(err)
	}
	pinged := map[string]bool{}
	for len(pinged) < 2 {
		msg, err := sub.NextMsg(testTimeout)
		if err != nil {
			t.Fatalf("pings: %v after %d replies", err, len(pinged))
		}
		var p micro.Ping
		if err := json.Unmarshal(msg.Data, &p); err != nil || p.Name != api.ServiceName || p.Version != Version {
			t.Fatalf("ping reply %s (%v)", msg.Data, err)
		}
		pinged[p.ID] = true
	}
	requests := 0
	for _, in := range []*instance{a, b} {
		id := in.svc.micro.ID()
		if !pinged[id] {
			t.Fatalf("instance %s did not answer the ping", id)
		}
		msg, err := nc.Request("$SRV.INFO."+api.ServiceName+"."+id, nil, testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		var info micro.Info
		if err := json.Unmarshal(msg.Data, &info); err != nil {
			t.Fatal(err)
		}
		subjects := map[string]string{}
		for _, ep := range info.Endpoints {
			if ep.QueueGroup != api.QueueGroup {
				t.Fatalf("endpoint %s in queue group %q", ep.Name, ep.QueueGroup)
			}
			subjects[ep.Subject] = ep.Metadata["kind"]
		}
		for _, name := range api.Commands() {
			if subjects[api.CommandSubject(name)] != "command" {
				t.Fatalf("no command endpoint %s in %v", name, subjects)
			}
		}
		for _, name := range []string{api.QueryGet, api.QueryHistory} {
			if subjects[api.QuerySubject(name)] != "query" {
				t.Fatalf("no query endpoint %s in %v", name, subjects)
			}
		}
		msg, err = nc.Request("$SRV.STATS."+api.ServiceName+"."+id, nil, testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		var stats micro.Stats
		if err := json.Unmarshal(msg.Data, &stats); err != nil {
			t.Fatal(err)
		}
		for _, ep := range stats.Endpoints {
			if ep.Name == api.CmdRegister {
				requests += ep.NumRequests
			}
		}
	}
	if requests != 2 {
		t.Fatalf("stats count %d register requests, want 2", requests)
	}
}

// runService runs Run in the background; stop cancels it and returns Run's error.
func runService(t *testing.T, cfg Config) (stop func() error) {
	t.Helper()
	return runServiceLog(t, cfg, zerolog.Nop())
}

// runServiceLog is runService with the service's log going to log.
func runServiceLog(t *testing.T, cfg Config, log zerolog.Logger) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, log) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func testConfig(t *testing.T) Config {
	var cfg Config
	cfg.Options = DefaultOptions()
	cfg.RequestTimeout = testTimeout
	cfg.setDefaults()
	cfg.HTTP.Addr = testkit.FreeAddr(t)
	return cfg
}

// TestRunServesOpsAndStops runs the whole service against a NATS server: /healthz, /readyz,
// /metrics, a command, and a clean stop on cancellation.
func TestRunServesOpsAndStops(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	cfg := testConfig(t)
	cfg.NATS.URL = srv.ClientURL()
	stop := runService(t, cfg)
	base := "http://" + cfg.HTTP.Addr
	readyCtx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var code int
	var body string
	if err := testkit.Poll(readyCtx, func() bool {
		code, body = testkit.HTTPGet(base + "/readyz")
		return code == http.StatusOK
	}); err != nil {
		t.Fatalf("readyz %d %s: %v", code, body, err)
	}
	if code, body := testkit.HTTPGet(base + "/healthz"); code != http.StatusOK {
		t.Fatalf("healthz %d %s", code, body)
	}
	c := newClient(t, srv.ClientURL())
	if _, err := c.Register(testCtx(t), api.Register{Hostname: "h", ResourceType: "vm"}); err != nil {
		t.Fatal(err)
	}
	// The request leaves the in-flight gauge once its reply is sent: the client may read the
	// metrics before that, so they are read until every line is there (or the deadline).
	wants := []string{
		`cim_command_service_commands_total{command="register",outcome="ok"} 1`,
		`cim_command_service_command_duration_seconds_count{command="register"} 1`,
		`cim_command_service_cache_misses_total 1`,
		`cim_command_service_requests_in_flight 0`,
		`cim_command_service_concurrency_conflicts_total 0`,
	}
	var metrics, missing string
	metricsCtx, cancelMetrics := context.WithTimeout(context.Background(), testTimeout)
	defer cancelMetrics()
	if err := testkit.Poll(metricsCtx, func() bool {
		_, metrics = testkit.HTTPGet(base + "/metrics")
		missing = ""
		for _, want := range wants {
			if !strings.Contains(metrics, want) {
				missing = want
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatalf("metrics lack %q: %v", missing, err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if code, _ := testkit.HTTPGet(base + "/healthz"); code != 0 {
		t.Fatalf("ops server still answers after stop: %d", code)
	}
}

// TestRunEmbedded runs the service without a NATS URL: it starts its own JetStream server,
// connects to it in-process, serves commands on it to clients on the TCP port, and finds its
// data again after a restart.
func TestRunEmbedded(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	port := testkit.FreePort(t)
	cfg.Embedded = embedded.Config{StoreDir: t.TempDir(), Host: "127.0.0.1", Port: port}
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	ctx := testCtx(t)

	var logs testkit.LogBuffer
	stop := runServiceLog(t, cfg, zerolog.New(&logs))
	waitListening(t, port)
	c := newClient(t, url, api.WithRetries(10))
	r, err := c.Register(ctx, api.Register{Hostname: "embedded-1", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	connected := 0
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, `"message":"nats connected"`) {
			connected++
			if !strings.Contains(line, `"in_process":true`) {
				t.Errorf("the service connected to its embedded server over the network: %s", line)
			}
		}
	}
	if connected != 1 {
		t.Errorf("%d \"nats connected\" log lines, want 1:\n%s", connected, logs.String())
	}

	cfg.HTTP.Addr = testkit.FreeAddr(t)
	runService(t, cfg)
	waitListening(t, port)
	c = newClient(t, url, api.WithRetries(10))
	got, err := c.Get(ctx, api.Get{AggregateID: r.AggregateID})
	if err != nil || got.Hostname != "embedded-1" || got.Version != r.Version {
		t.Fatalf("after restart: %+v, %v", got, err)
	}
}

// waitListening waits until something accepts connections on the loopback port.
func waitListening(t *testing.T, port int) {
	t.Helper()
	var err error
	if perr := testkit.Poll(t.Context(), func() bool {
		var conn net.Conn
		if conn, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			conn.Close()
		}
		return err == nil
	}); perr != nil {
		t.Fatalf("nothing listens on port %d (%v): %v", port, perr, err)
	}
}
