// Package maintest checks a service's main the way an orchestrator drives it: start it with
// flags, wait until it serves, send it the equivalent of SIGTERM, and expect the one graceful
// stop of servicemain.
package maintest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/servicemain"
	"github.com/cim-infra/registry/internal/testkit"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/nats-io/nats.go/jetstream"
)

// timeout bounds each wait of StopsGracefully.
const timeout = 60 * time.Second

// StopsGracefully runs svc with args, against an embedded NATS server that has the event stream,
// with its own -http-addr, until its operations server answers 200 on path ("/readyz", or
// "/healthz" for a service that cannot be ready in the test); then it cancels its context as
// SIGTERM does. It expects exit code 0, the stop's steps logged in their order (shutting down,
// the NATS connection drained, the service stopped), and the operations server gone.
func StopsGracefully(t *testing.T, svc servicemain.Service, path string, args ...string) {
	t.Helper()
	url := natstest.RunServer(t).ClientURL()
	js, err := jetstream.New(natstest.Connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	store, err := jetstore.New(js, jetstore.Config{KeyPrefix: jetstore.DefaultKeyPrefix}) // as the command service makes it
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureStream(t.Context()); err != nil {
		t.Fatal(err)
	}
	addr := testkit.FreeAddr(t)
	args = append(args, "-nats-url", url, "-http-addr", addr, "-log-level", "info")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs testkit.LogBuffer
	exited := make(chan int, 1)
	go func() { exited <- svc.Run(ctx, args, &logs) }()

	base := "http://" + addr
	for deadline := time.Now().Add(timeout); ; {
		code, body := testkit.HTTPGet(base + path)
		if code == 200 {
			break
		}
		select {
		case c := <-exited:
			t.Fatalf("%s exited with %d before serving %s:\n%s", svc.Name, c, path, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s answers %d %s after %s:\n%s", svc.Name, path, code, body, timeout, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Fatalf("%s exited with %d after SIGTERM, want 0:\n%s", svc.Name, code, logs.String())
		}
	case <-time.After(timeout):
		t.Fatalf("%s still running %s after SIGTERM:\n%s", svc.Name, timeout, logs.String())
	}
	rest := logs.String()
	for _, step := range []string{"shutting down", "nats connection drained", svc.Name + " stopped"} {
		i := strings.Index(rest, `"message":"`+step+`"`)
		if i < 0 {
			t.Fatalf("%s: no %q logged after the steps before it:\n%s", svc.Name, step, logs.String())
		}
		rest = rest[i:]
	}
	if code, _ := testkit.HTTPGet(base + "/healthz"); code != 0 {
		t.Fatalf("%s: the operations server still answers after the stop: %d", svc.Name, code)
	}
}
