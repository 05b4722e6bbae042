package commandservice

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

// testTimeout bounds one request in tests: generous, the machine is shared and -race is slow.
const testTimeout = 20 * time.Second

// instance is one service instance under test, on a connection of its own.
type instance struct {
	svc *Service
	nc  *nats.Conn
	reg *prometheus.Registry
}

type instanceOption func(*Options, *jetstore.Config)

func withReplicas(n int) instanceOption {
	return func(_ *Options, sc *jetstore.Config) { sc.Replicas = n }
}

func withHooks(h *testHooks) instanceOption {
	return func(o *Options, _ *jetstore.Config) { o.hooks = h }
}

func withOptions(f func(*Options)) instanceOption {
	return func(o *Options, _ *jetstore.Config) { f(o) }
}

// startInstance starts a service instance connected to url; it is shut down when the test
// ends.
func startInstance(t testing.TB, url string, opts ...instanceOption) *instance {
	t.Helper()
	return startInstanceOn(t, natstest.Connect(t, url), opts...)
}

// startInstanceOn is startInstance on the connection nc.
func startInstanceOn(t testing.TB, nc *nats.Conn, opts ...instanceOption) *instance {
	t.Helper()
	o := DefaultOptions()
	o.RequestTimeout = testTimeout
	var sc jetstore.Config
	for _, f := range opts {
		f(&o, &sc)
	}
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc, err := New(ctx, nc, sc, o, zerolog.Nop(), reg)
	if err != nil {
		t.Fatalf("start service: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = svc.Shutdown(ctx)
	})
	return &instance{svc: svc, nc: nc, reg: reg}
}

// counter reads a counter of the instance's registry.
func (in *instance) counter(t testing.TB, c prometheus.Collector) float64 {
	t.Helper()
	return testutil.ToFloat64(c)
}

// newClient returns an api.Client on a connection of its own. It retries requests that found
// no responder: on a cluster, a new instance's subscriptions reach the other servers a moment
// after it started.
func newClient(t testing.TB, url string, opts ...api.ClientOption) *api.Client {
	t.Helper()
	defaults := []api.ClientOption{api.WithTimeout(testTimeout), api.WithRetries(10), api.WithRetryBackoff(10 * time.Millisecond)}
	c, err := api.NewClient(natstest.Connect(t, url), append(defaults, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// rawRequest sends body to subject and returns the reply message. Like newClient's, it sends
// again a request that found no responder (nothing reached a service): on a cluster, a new
// instance's subscriptions reach the other servers a moment after it started.
func rawRequest(t testing.TB, nc *nats.Conn, subject string, body []byte) *nats.Msg {
	t.Helper()
	msg, err := nc.Request(subject, body, testTimeout)
	for deadline := time.Now().Add(testTimeout); errors.Is(err, nats.ErrNoResponders) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		msg, err = nc.Request(subject, body, testTimeout)
	}
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	return msg
}

// replyError decodes an error reply, checking that the micro headers agree with the body.
func replyError(t testing.TB, msg *nats.Msg) *api.Error {
	t.Helper()
	code := msg.Header.Get(micro.ErrorCodeHeader)
	if code == "" {
		t.Fatalf("reply is not an error: %s", msg.Data)
	}
	var e api.Error
	if err := json.Unmarshal(msg.Data, &e); err != nil {
		t.Fatalf("error body %q: %v", msg.Data, err)
	}
	if strconv.Itoa(e.Code) != code {
		t.Fatalf("header code %s, body code %d", code, e.Code)
	}
	if msg.Header.Get(micro.ErrorHeader) == "" {
		t.Fatalf("no %s header", micro.ErrorHeader)
	}
	return &e
}

// asAPIError returns err as an *api.Error or fails.
func asAPIError(t testing.TB, err error) *api.Error {
	t.Helper()
	var e *api.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *api.Error", err, err)
	}
	return e
}

// wantError checks an error's code and kind.
func wantError(t testing.TB, err error, code int, kind string) *api.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %d %s", code, kind)
	}
	e := asAPIError(t, err)
	if e.Code != code || e.Kind != kind {
		t.Fatalf("error %v, want %d %s", e, code, kind)
	}
	return e
}

// testStore opens the event store on url, for checking what was written.
func testStore(t testing.TB, url string, replicas int) *jetstore.Store {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	st, err := jetstore.New(js, jetstore.Config{Replicas: replicas}, jetstore.WithUpcasters(resourcestore.Upcasters()...))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// eventsOf loads every event of a resource.
func eventsOf(t testing.TB, st *jetstore.Store, id string) []jetstore.RecordedEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	loaded, err := st.Load(ctx, jetstore.AggregateRef{Type: resourcestore.AggregateType, ID: id})
	if err != nil {
		t.Fatalf("load %s: %v", id, err)
	}
	return loaded.Events
}

// eventsByCommand counts the stored events of a resource per command id.
func eventsByCommand(events []jetstore.RecordedEvent) map[string][]jetstore.RecordedEvent {
	out := map[string][]jetstore.RecordedEvent{}
	for _, e := range events {
		out[e.CommandID] = append(out[e.CommandID], e)
	}
	return out
}

func newID() string { return uuid.NewString() }

func ptr[T any](v T) *T { return &v }

func mustUUID(t testing.TB, s string) uuid.UUID {
	t.Helper()
	id, err := uuid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
