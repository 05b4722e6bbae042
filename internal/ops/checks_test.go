package ops

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/testkit"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

func TestNATSAndStreamChecks(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := natstest.RunServer(t)
	nc := natstest.Connect(t, n.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}}); err != nil {
		t.Fatal(err)
	}

	s := New("127.0.0.1:0", nil, zerolog.Nop())
	s.CheckTimeout = 5 * time.Second
	s.AddReadiness("nats", NATSConnected(nc))
	s.AddReadiness("stream", StreamReachable(js, "EVENTS"))
	if code, body := get(t, s.Handler(), PathReady); code != http.StatusOK {
		t.Fatalf("server up, stream exists: %d %s", code, body)
	}

	if err := StreamReachable(js, "MISSING")(ctx); !errors.Is(err, jetstream.ErrStreamNotFound) || !strings.Contains(err.Error(), "MISSING") {
		t.Fatalf("missing stream: %v", err)
	}

	n.Shutdown()
	testkit.WaitFor(t, ctx, "the client to lose the server", func() bool { return !nc.IsConnected() })
	s.CheckTimeout = 200 * time.Millisecond
	code, body := get(t, s.Handler(), PathReady)
	r := readyReport(t, body)
	if code != http.StatusServiceUnavailable || len(r.Failing) != 2 || !strings.Contains(r.Checks["nats"], "not connected") {
		t.Fatalf("server down: %d %s", code, body)
	}
	if err := NATSConnected(nc)(ctx); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("NATSConnected while down: %v", err)
	}

	n.Restart()
	testkit.WaitFor(t, ctx, "the client to reconnect", nc.IsConnected)
	s.CheckTimeout = 5 * time.Second
	if code, body := get(t, s.Handler(), PathReady); code != http.StatusOK {
		t.Fatalf("after restart: %d %s", code, body)
	}
}
