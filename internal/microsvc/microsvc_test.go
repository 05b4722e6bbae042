package microsvc

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

const testTimeout = 20 * time.Second

// TestDiscoveryAndStats: the service answers PING, INFO and STATS at the three scopes `nats
// micro` uses, and STATS counts replies sent later from other goroutines, error replies (with
// their headers), requests without a reply subject, and requests dropped unanswered.
func TestDiscoveryAndStats(t *testing.T) {
	t.Parallel()
	url := natstest.RunServer(t).ClientURL()
	nc := natstest.Connect(t, url)
	const held = 100 * time.Millisecond
	s := New(nc, Config{Name: "echo-service", Version: "1.2.3", Description: "echoes", QueueGroup: "echo", Metadata: map[string]string{"k": "v"}})
	answered := make(chan struct{}, 10)
	s.AddEndpoint("echo", "svc.echo", map[string]string{"kind": "query"}, func(r *Request) {
		go func() {
			defer func() { answered <- struct{}{} }()
			switch string(r.Data()) {
			case "fail":
				_ = r.Error(409, "line one\nline two", []byte(`{"why":"no"}`))
			case "drop":
				r.Drop("dropped")
			default:
				time.Sleep(held)
				_ = r.Respond(append([]byte("echo "), r.Data()...))
			}
		}()
	})
	if s.Handler("nope") != nil || s.Handler("echo") == nil {
		t.Fatal("Handler by name")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	client := natstest.Connect(t, url)
	m, err := client.Request("svc.echo", []byte("hi"), testTimeout)
	if err != nil || string(m.Data) != "echo hi" {
		t.Fatalf("reply %v, %v", m, err)
	}
	m, err = client.Request("svc.echo", []byte("fail"), testTimeout)
	if err != nil || m.Header.Get(micro.ErrorCodeHeader) != "409" || m.Header.Get(micro.ErrorHeader) != "line one line two" || string(m.Data) != `{"why":"no"}` {
		t.Fatalf("error reply %+v, %v", m, err)
	}
	for _, body := range []string{"no reply wanted", "drop"} {
		if err := client.Publish("svc.echo", []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 {
		select {
		case <-answered:
		case <-time.After(testTimeout):
			t.Fatal("requests not answered")
		}
	}

	for _, scope := range []string{"", ".echo-service", ".echo-service." + s.ID()} {
		var ping micro.Ping
		request(t, client, "$SRV.PING"+scope, &ping)
		if ping.ID != s.ID() || ping.Name != "echo-service" || ping.Version != "1.2.3" || ping.Type != micro.PingResponseType {
			t.Fatalf("ping%s: %+v", scope, ping)
		}
		var info micro.Info
		request(t, client, "$SRV.INFO"+scope, &info)
		if info.Description != "echoes" || info.Metadata["k"] != "v" || len(info.Endpoints) != 1 ||
			info.Endpoints[0].Subject != "svc.echo" || info.Endpoints[0].QueueGroup != "echo" || info.Endpoints[0].Metadata["kind"] != "query" {
			t.Fatalf("info%s: %+v", scope, info)
		}
		var stats micro.Stats
		request(t, client, "$SRV.STATS"+scope, &stats)
		if len(stats.Endpoints) != 1 || stats.Started.IsZero() {
			t.Fatalf("stats%s: %+v", scope, stats)
		}
		ep := stats.Endpoints[0]
		if ep.NumRequests != 4 || ep.NumErrors != 2 || ep.LastError == "" || ep.ProcessingTime < 2*held ||
			ep.AverageProcessingTime != ep.ProcessingTime/4 {
			t.Fatalf("stats%s: %+v, want 4 requests, 2 errors, at least %s", scope, ep, 2*held)
		}
	}
	var stats micro.Stats
	request(t, client, "$SRV.STATS.echo-service", &stats)
	errs := []string{"409:line one line two", "dropped"}
	if last := stats.Endpoints[0].LastError; !strings.Contains(strings.Join(errs, "|"), last) {
		t.Fatalf("last error %q, want one of %q", last, errs)
	}

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil || !s.Stopped() {
		t.Fatalf("second stop: %v, stopped %t", err, s.Stopped())
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Request("svc.echo", []byte("hi"), testTimeout); !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("request after stop: %v, want no responders", err)
	}
}

func request(t *testing.T, nc *nats.Conn, subject string, out any) {
	t.Helper()
	m, err := nc.Request(subject, nil, testTimeout)
	if err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
	if err := json.Unmarshal(m.Data, out); err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
}
