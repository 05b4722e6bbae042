package servicemain

import (
	"context"
	"errors"
	"flag"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/testkit"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

const testTimeout = 30 * time.Second

func testCommon(t *testing.T, url string) Common {
	t.Helper()
	var c Common
	c.RegisterFlags(flag.NewFlagSet("svc", flag.ContinueOnError), url, testkit.FreeAddr(t))
	return c
}

// waitHTTP polls url until it answers with status want.
func waitHTTP(t *testing.T, url string, want int) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		code, body := testkit.HTTPGet(url)
		if code == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d %s, want %d", url, code, body, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// echo is a request-driven instance with work beside it: it answers svc.echo from goroutines,
// as the services' handlers do, and records the steps of its stop.
type echo struct {
	mu       sync.Mutex
	steps    []string
	nc       *nats.Conn
	held     chan struct{} // closed when a request is in flight
	release  chan struct{} // closing it lets the request in flight reply
	inflight sync.WaitGroup
}

func (e *echo) step(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.steps = append(e.steps, s)
}

func (e *echo) start(_ context.Context, nc *nats.Conn, _ *prometheus.Registry) (*Serving, error) {
	e.nc = nc
	sub, err := nc.Subscribe("svc.echo", func(m *nats.Msg) {
		e.inflight.Add(1)
		go func() {
			defer e.inflight.Done()
			close(e.held)
			<-e.release
			_ = m.Respond(m.Data)
		}()
	})
	if err != nil {
		return nil, err
	}
	if err := nc.Flush(); err != nil {
		return nil, err
	}
	return &Serving{
		Work: func(ctx context.Context) error {
			<-ctx.Done()
			e.step("work stopped")
			return nil
		},
		Stop: func(context.Context) error {
			e.step("stop taking requests")
			if err := sub.Unsubscribe(); err != nil {
				return err
			}
			e.inflight.Wait()
			e.step("requests in flight done")
			return nil
		},
	}, nil
}

// TestServeStopsInOrder: on ctx's end readiness goes false, the instance stops taking requests
// and its request in flight replies, then its work stops, then the connection is drained and
// the operations server stops.
func TestServeStopsInOrder(t *testing.T) {
	t.Parallel()
	url := natstest.RunServer(t).ClientURL()
	set := testCommon(t, url)
	e := &echo{held: make(chan struct{}), release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs testkit.LogBuffer
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, "svc", set, zerolog.New(&logs), e.start) }()
	base := "http://" + set.HTTP.Addr
	waitHTTP(t, base+"/readyz", http.StatusOK)

	client := natstest.Connect(t, url)
	replied := make(chan *nats.Msg, 1)
	go func() {
		m, err := client.Request("svc.echo", []byte("in flight"), testTimeout)
		if err != nil {
			t.Errorf("request in flight at shutdown: %v", err)
		}
		replied <- m
	}()
	<-e.held
	cancel()
	waitHTTP(t, base+"/readyz", http.StatusServiceUnavailable)
	if code, _ := testkit.HTTPGet(base + "/healthz"); code != http.StatusOK {
		t.Fatalf("healthz %d while stopping, want 200 until the connection is drained", code)
	}
	select {
	case err := <-done:
		t.Fatalf("Serve returned (%v) with a request in flight", err)
	default:
	}
	close(e.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if m := <-replied; m == nil || string(m.Data) != "in flight" {
		t.Fatalf("reply %v", m)
	}
	want := []string{"stop taking requests", "requests in flight done", "work stopped"}
	if !slices.Equal(e.steps, want) {
		t.Fatalf("steps %q, want %q", e.steps, want)
	}
	if !e.nc.IsClosed() {
		t.Fatal("the connection is still open")
	}
	if !strings.Contains(logs.String(), `"message":"nats connection drained"`) {
		t.Fatalf("no drain logged:\n%s", logs.String())
	}
	if code, _ := testkit.HTTPGet(base + "/healthz"); code != 0 {
		t.Fatalf("ops server still answers after the stop: %d", code)
	}
}

// TestServeFailures: work that stops by itself, an operations address already taken and a
// start that fails each end Serve with an error, and what was started is stopped.
func TestServeFailures(t *testing.T) {
	t.Parallel()
	url := natstest.RunServer(t).ClientURL()
	ctx := context.Background()

	set := testCommon(t, url)
	var nc *nats.Conn
	stopped := false
	err := Serve(ctx, "svc", set, zerolog.Nop(), func(_ context.Context, c *nats.Conn, _ *prometheus.Registry) (*Serving, error) {
		nc = c
		return &Serving{
			Work: func(context.Context) error { return nil },
			Stop: func(context.Context) error { stopped = true; return nil },
		}, nil
	})
	if err == nil || !strings.Contains(err.Error(), "stopped by itself") || !stopped || !nc.IsClosed() {
		t.Fatalf("work that stopped by itself: %v (stopped %t, connection closed %t)", err, stopped, nc.IsClosed())
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	set.HTTP.Addr = ln.Addr().String()
	stopped = false
	err = Serve(ctx, "svc", set, zerolog.Nop(), func(_ context.Context, c *nats.Conn, _ *prometheus.Registry) (*Serving, error) {
		nc = c
		return &Serving{Stop: func(context.Context) error { stopped = true; return nil }}, nil
	})
	if err == nil || !stopped || !nc.IsClosed() {
		t.Fatalf("operations address taken: %v (stopped %t, connection closed %t)", err, stopped, nc.IsClosed())
	}

	boom := errors.New("boom")
	if err := Serve(ctx, "svc", testCommon(t, url), zerolog.Nop(), func(context.Context, *nats.Conn, *prometheus.Registry) (*Serving, error) {
		return nil, boom
	}); !errors.Is(err, boom) {
		t.Fatalf("failed start: %v", err)
	}

	set = testCommon(t, url)
	set.ShutdownTimeout = 0
	if err := Serve(ctx, "svc", set, zerolog.Nop(), nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("zero shutdown timeout: %v", err)
	}
}

// TestRunOnceDrains: a one-shot job's connection is drained after it, and its error returned.
func TestRunOnceDrains(t *testing.T) {
	t.Parallel()
	url := natstest.RunServer(t).ClientURL()
	client := natstest.Connect(t, url)
	sub, err := client.SubscribeSync("job.out")
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Flush(); err != nil {
		t.Fatal(err)
	}
	var nc *nats.Conn
	boom := errors.New("boom")
	err = RunOnce(context.Background(), "job", testCommon(t, url), zerolog.Nop(), func(_ context.Context, c *nats.Conn) error {
		nc = c
		for range 1000 {
			if err := c.Publish("job.out", []byte("x")); err != nil {
				return err
			}
		}
		return boom
	})
	if !errors.Is(err, boom) || !nc.IsClosed() {
		t.Fatalf("RunOnce: %v (connection closed %t)", err, nc.IsClosed())
	}
	for i := range 1000 {
		if _, err := sub.NextMsg(testTimeout); err != nil {
			t.Fatalf("message %d published before the drain: %v", i, err)
		}
	}
}
