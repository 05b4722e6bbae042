package jetstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/pkg/jetstore"
)

// env is what the conformance suite needs from a deployment: a store on an ensured stream, the
// JetStream context it uses, and a way to open more connections and to look at the servers.
type env struct {
	Store      *jetstore.Store
	JS         jetstream.JetStream
	Replicas   int
	URL        string
	Servers    func() []*server.Server
	Replicated bool
}

// setup starts a deployment for the suite.
type setup func(t *testing.T) env

func TestConformanceSingleServer(t *testing.T) {
	t.Parallel()
	runConformance(t, func(t *testing.T) env {
		n := natstest.RunServer(t)
		return newEnv(t, n.ClientURL(), 1, func() []*server.Server { return []*server.Server{n.Server()} })
	})
}

func TestConformanceClusterR3SyncAlways(t *testing.T) {
	if testing.Short() {
		t.Skip("3-node cluster: skipped with -short")
	}
	t.Parallel()
	runConformance(t, func(t *testing.T) env {
		c := natstest.RunCluster(t, 3, natstest.SyncAlways())
		return newEnv(t, c.ClientURL(), 3, func() []*server.Server {
			var ss []*server.Server
			for _, n := range c.Nodes {
				ss = append(ss, n.Server())
			}
			return ss
		})
	})
}

func newEnv(t *testing.T, url string, replicas int, servers func() []*server.Server) env {
	t.Helper()
	js := newJS(t, url)
	st, err := jetstore.New(js, jetstore.Config{Replicas: replicas, KeyPrefix: jetstore.DefaultKeyPrefix})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.EnsureStream(ctx); err != nil {
		t.Fatalf("EnsureStream: %v", err)
	}
	return env{Store: st, JS: js, Replicas: replicas, URL: url, Servers: servers, Replicated: replicas > 1}
}

func newJS(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, url))
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	return js
}

// runConformance is the one suite every deployment of the store must pass. The deployment is
// shared by the cases; each case works on aggregates of its own type, so cases run in parallel.
func runConformance(t *testing.T, start setup) {
	e := start(t)
	cases := []struct {
		name string
		run  func(*testing.T, env)
	}{
		{"RoundTrip", testRoundTrip},
		{"MessageHeaders", testMessageHeaders},
		{"CallerHeaders", testCallerHeaders},
		{"ForeignHeaders", testForeignHeaders},
		{"ConcurrentWriters", testConcurrentWriters},
		{"FailedBatchWritesNothing", testFailedBatchWritesNothing},
		{"RetryOfLostReply", testRetryOfLostReply},
		{"RetryAfterReload", testRetryAfterReload},
		{"EventIDReused", testEventIDReused},
		{"ConflictReportsActual", testConflictReportsActual},
		{"TailLoad", testTailLoad},
		{"LastEvent", testLastEvent},
		{"UpToSequence", testUpToSequence},
		{"UpToTime", testUpToTime},
		{"LongAggregate", testLongAggregate},
		{"Paging", testPaging},
		{"MaxEvents", testMaxEvents},
		{"Isolation", testIsolation},
		{"Snapshots", testSnapshots},
		{"Upcasting", testUpcasting},
		{"BadInput", testBadInput},
		{"CancelledContext", testCancelledContext},
		{"NoConsumersLeftBehind", testNoConsumersLeftBehind},
		{"ReadAll", testReadAll},
		{"EnsureStream", testEnsureStream},
		{"KeyClaims", testKeyClaims},
		{"KeyConflictToldApart", testKeyConflictToldApart},
		{"ConcurrentClaims", testConcurrentClaims},
		{"KeyRetry", testKeyRetry},
		{"KeysAreNotEvents", testKeysAreNotEvents},
		{"KeyUpgrade", testKeyUpgrade},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, e)
		})
	}
}

// Helpers shared by the cases.

var unique atomic.Int64

// newAgg returns an aggregate that no other case uses.
func newAgg(t *testing.T) jetstore.AggregateRef {
	return jetstore.AggregateRef{Type: aggType(t), ID: fmt.Sprintf("a%d", unique.Add(1))}
}

// aggType is an aggregate type of the running case alone.
func aggType(t *testing.T) string {
	name := []byte(t.Name())
	for i, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			name[i] = '_'
		}
	}
	return string(name)
}

// newEvents returns n events with fresh ids.
func newEvents(n int, typ string) []jetstore.Event {
	evs := make([]jetstore.Event, n)
	for i := range evs {
		id := unique.Add(1)
		evs[i] = jetstore.Event{
			ID:            fmt.Sprintf("ev-%d", id),
			Type:          typ,
			SchemaVersion: 1,
			Data:          fmt.Appendf(nil, `{"n":%d}`, id),
			CorrelationID: "corr-1",
			CausationID:   fmt.Sprintf("cause-%d", id),
			CommandID:     "cmd-1",
		}
	}
	return evs
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustAppend(t *testing.T, st *jetstore.Store, agg jetstore.AggregateRef, expected uint64, evs []jetstore.Event) jetstore.AppendResult {
	t.Helper()
	res, err := st.Append(ctxT(t), agg, expected, evs)
	if err != nil {
		t.Fatalf("Append(%s, expected %d, %d events): %v", agg, expected, len(evs), err)
	}
	if res.Duplicate {
		t.Fatalf("Append(%s, expected %d): unexpected duplicate", agg, expected)
	}
	if got, want := res.LastSequence-res.FirstSequence+1, uint64(len(evs)); got != want {
		t.Fatalf("Append(%s): sequences %d..%d for %d events", agg, res.FirstSequence, res.LastSequence, len(evs))
	}
	return res
}

func mustLoad(t *testing.T, st *jetstore.Store, agg jetstore.AggregateRef, opts ...jetstore.LoadOption) jetstore.Loaded {
	t.Helper()
	l, err := st.Load(ctxT(t), agg, opts...)
	if err != nil {
		t.Fatalf("Load(%s): %v", agg, err)
	}
	return l
}

// sameEvents checks that got are want in order, with contiguous ascending sequences allowed to
// have gaps (other aggregates interleave).
func sameEvents(t *testing.T, got []jetstore.RecordedEvent, want []jetstore.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	var prev uint64
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Type != w.Type || g.SchemaVersion != w.SchemaVersion || string(g.Data) != string(w.Data) ||
			g.CorrelationID != w.CorrelationID || g.CausationID != w.CausationID || g.CommandID != w.CommandID {
			t.Fatalf("event %d: got %+v, want %+v", i, g.Event, w)
		}
		if g.Sequence <= prev {
			t.Fatalf("event %d: sequence %d not after %d", i, g.Sequence, prev)
		}
		prev = g.Sequence
	}
}

// consumers returns the number of consumers on every server and of the store's stream.
func consumers(t *testing.T, e env) (onServers int, onStream int) {
	t.Helper()
	for _, s := range e.Servers() {
		info, err := s.Jsz(&server.JSzOptions{})
		if err != nil {
			t.Fatalf("Jsz: %v", err)
		}
		onServers += info.Consumers
	}
	str, err := e.JS.Stream(ctxT(t), e.Store.Config().Stream)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	return onServers, str.CachedInfo().State.Consumers
}

// conn opens a connection of the case's own, to count its subscriptions.
func conn(t *testing.T, e env) *nats.Conn { return natstest.Connect(t, e.URL) }
