package queryservice

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/streamtest"
	"github.com/cim-infra/registry/internal/testkit"
	"github.com/cim-infra/registry/internal/workload"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// env is an embedded server with the event stream and a writer of valid histories that keeps
// the fold of what it wrote: the model's expected state.
type env struct {
	t      *testing.T
	stream *streamtest.Stream
	ctx    context.Context
	url    string
	nc     *nats.Conn
	js     jetstream.JetStream
	store  *jetstore.Store

	g       *workload.Generator
	states  map[uuid.UUID]cr.State
	version map[uuid.UUID]uint64 // aggregate -> its last stream sequence
	head    uint64
}

func newEnv(t *testing.T, seed uint64, resources int) *env {
	t.Helper()
	s := streamtest.New(t, 120*time.Second)
	return &env{t: t, stream: s, ctx: s.Ctx, url: s.URL, nc: s.NC, js: s.JS, store: s.Store,
		g: workload.New(seed, resources), states: map[uuid.UUID]cr.State{}, version: map[uuid.UUID]uint64{}}
}

// write appends the events of the generator's next n commands.
func (e *env) write(n int) {
	e.t.Helper()
	for range n {
		c := e.g.Next()
		if c == nil {
			e.t.Fatal("every resource is decommissioned; use more resources")
		}
		e.do(c)
	}
}

// do decides c against the fold of what was written and appends its events; it returns the
// stream sequence of the last one.
func (e *env) do(c cr.Command) uint64 {
	e.t.Helper()
	if evs, seq := e.stream.Do(e.t, e.states, e.version, c); len(evs) > 0 {
		e.head = seq
	}
	return e.head
}

// publishRaw writes a message straight to the stream, as a misbehaving writer would.
func (e *env) publishRaw(subject string, h nats.Header, data []byte) uint64 {
	e.t.Helper()
	e.head = e.stream.PublishRaw(e.t, subject, h, data)
	return e.head
}

// instance is one running query service: its own connection and registry.
type instance struct {
	svc  *Service
	nc   *nats.Conn
	reg  *prometheus.Registry
	done chan struct{} // closed when Run returned, with its error in err
	err  error
	stop context.CancelFunc
}

// shutdown stops the instance gracefully and returns Run's error.
func (in *instance) shutdown() error {
	in.stop()
	<-in.done
	return in.err
}

func testOptions() Options {
	return Options{BatchSize: 100, DefaultWait: 5 * time.Second}
}

// start runs an instance of the service.
func (e *env) start(opts Options) *instance {
	e.t.Helper()
	nc := natstest.Connect(e.t, e.url)
	reg := prometheus.NewRegistry()
	svc, err := New(nc, opts, zerolog.Nop(), reg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	in := &instance{svc: svc, nc: nc, reg: reg, done: make(chan struct{}), stop: cancel}
	go func() {
		in.err = svc.Run(ctx)
		close(in.done)
	}()
	e.t.Cleanup(func() {
		if err := in.shutdown(); err != nil {
			e.t.Errorf("run: %v", err)
		}
	})
	return in
}

// startReady runs an instance and waits until it serves.
func (e *env) startReady(opts Options) *instance {
	e.t.Helper()
	in := e.start(opts)
	e.waitFor("the instance to be ready", func() bool { return in.svc.Ready(e.ctx) == nil })
	return in
}

// waitSeq waits until the instance's model stands at sequence seq or later.
func (e *env) waitSeq(in *instance, seq uint64) {
	e.t.Helper()
	e.waitFor("sequence "+strconv.FormatUint(seq, 10), func() bool { return in.svc.Model().Sequence() >= seq })
}

func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	testkit.WaitFor(e.t, e.ctx, what, cond)
}

// request sends a query and decodes its reply into out, or returns the error reply.
func request(ctx context.Context, nc *nats.Conn, name string, body any, out any) (*api.Error, error) {
	data, ok := body.([]byte)
	if !ok {
		var err error
		if data, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	m, err := nc.RequestWithContext(ctx, api.QuerySubject(name), data)
	if err != nil {
		return nil, err
	}
	if m.Header.Get(micro.ErrorCodeHeader) != "" {
		var e api.Error
		if err := json.Unmarshal(m.Data, &e); err != nil {
			return nil, err
		}
		if strconv.Itoa(e.Code) != m.Header.Get(micro.ErrorCodeHeader) {
			return nil, errors.New("error header code " + m.Header.Get(micro.ErrorCodeHeader) + " differs from the body's")
		}
		return &e, nil
	}
	return nil, json.Unmarshal(m.Data, out)
}

// query sends a query that must succeed.
func (e *env) query(name string, body any, out any) {
	e.t.Helper()
	apiErr, err := request(e.ctx, e.nc, name, body, out)
	if err != nil {
		e.t.Fatalf("%s: %v", name, err)
	}
	if apiErr != nil {
		e.t.Fatalf("%s: error reply %v", name, apiErr)
	}
}

// queryError sends a query that must fail and returns its error reply.
func (e *env) queryError(name string, body any) *api.Error {
	e.t.Helper()
	var out json.RawMessage
	apiErr, err := request(e.ctx, e.nc, name, body, &out)
	if err != nil {
		e.t.Fatalf("%s: %v", name, err)
	}
	if apiErr == nil {
		e.t.Fatalf("%s %s: succeeded with %s, want an error", name, body, out)
	}
	return apiErr
}

// listAll pages through a list with the given page size and returns every row in order.
func (e *env) listAll(q api.List) ([]api.Resource, api.ResourcePage) {
	e.t.Helper()
	var all []api.Resource
	var first api.ResourcePage
	for page := 0; ; page++ {
		var p api.ResourcePage
		e.query(api.QueryList, q, &p)
		if page == 0 {
			first = p
		}
		all = append(all, p.Resources...)
		if p.NextCursor == "" {
			return all, first
		}
		if page > 100000 {
			e.t.Fatal("paging does not end")
		}
		q.Cursor = p.NextCursor
	}
}
