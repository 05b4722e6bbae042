package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/cli"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/testkit"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
)

// runWith runs cimctl with args as given (no --retries added) and env as its environment.
func runWith(env map[string]string, args ...string) run {
	var stdout, stderr bytes.Buffer
	c := &cli.CLI{Stdout: &stdout, Stderr: &stderr,
		LookupEnv:    func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		NewCommandID: func() string { return "cmd-fixed" }}
	code := c.Run(context.Background(), args)
	return run{code, stdout.String(), stderr.String()}
}

// jsonError checks that stderr is exactly one line holding an api.Error, and returns it.
func jsonError(t *testing.T, r run) api.Error {
	t.Helper()
	if r.stdout != "" {
		t.Errorf("stdout is not empty:\n%s", r.stdout)
	}
	line, rest, _ := strings.Cut(r.stderr, "\n")
	if rest != "" {
		t.Fatalf("stderr holds more than one line:\n%s", r.stderr)
	}
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	var e api.Error
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("stderr is not an api.Error: %v\n%s", err, r.stderr)
	}
	if e.Message == "" {
		t.Errorf("error without message: %s", line)
	}
	return e
}

// TestRunJSONErrorsOfEveryClass: with -o json, every failure, whether the service answered or
// not, is printed as the service's error body, with the code whose exit code cimctl returns.
func TestRunJSONErrorsOfEveryClass(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	cannedService(t, srv.ClientURL())
	silent := natstest.RunServer(t) // no service: no responders
	locked := natstest.RunServer(t, natstest.WithOptions(func(o *server.Options) { o.Username, o.Password = "u", "p" }))
	small := natstest.RunServer(t, natstest.WithOptions(func(o *server.Options) { o.MaxPayload = 1024 }))
	closed := "nats://127.0.0.1:" + strconv.Itoa(testkit.FreePort(t)) // nothing listens there

	cases := []struct {
		name string
		url  string
		args []string
		code int // the body's code
		kind string
		exit int
	}{
		{"missing flag", srv.ClientURL(), []string{"get", "-o", "json"}, 400, cli.KindUsage, cli.ExitUsage},
		{"unknown flag before -o", srv.ClientURL(), []string{"get", "--bogus", "-o", "json"}, 400, cli.KindUsage, cli.ExitUsage},
		{"unknown command", srv.ClientURL(), []string{"frobnicate", "--output=json"}, 400, cli.KindUsage, cli.ExitUsage},
		{"bad NATS settings", srv.ClientURL(), []string{"get", "--id", "x1", "-o", "json", "--nats-user", "u"}, 400, cli.KindInvalidSettings, cli.ExitUsage},
		{"service refuses input", srv.ClientURL(), []string{"register", "--hostname", "-web", "--type", "vm", "-o", "json"}, 400, "invalid_field", cli.ExitUsage},
		{"not found", srv.ClientURL(), []string{"get", "--id", "missing", "-o", "json"}, 404, "not_registered", cli.ExitNotFound},
		{"service error without body", srv.ClientURL(), []string{"get", "--id", "boom", "-o", "json"}, 500, "error", cli.ExitError},
		{"no responders", silent.ClientURL(), []string{"assign-owner", "--id", "x1", "--owner", "o1", "-o", "json", "--retries", "0"}, 503, api.KindNoResponders, cli.ExitUnavailable},
		{"NATS unreachable", closed, []string{"get", "--id", "x1", "-o", "json", "--retries", "2", "--nats-reconnect-wait", "1ms"}, 503, cli.KindNATSUnreachable, cli.ExitUnavailable},
		{"NATS refuses", locked.ClientURL(), []string{"get", "--id", "x1", "-o", "json", "--nats-user", "u", "--nats-password", "wrong"}, 500, cli.KindNATSRefused, cli.ExitError},
		{"over max payload", small.ClientURL(), []string{"set-metadata", "--id", "x1", "--key", "k", "--value", strings.Repeat("x", 2000), "-o", "json"}, 400, api.KindRequestTooLarge, cli.ExitUsage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runWith(map[string]string{"NATS_URL": tc.url}, tc.args...)
			e := jsonError(t, r)
			if e.Code != tc.code || e.Kind != tc.kind {
				t.Errorf("error %d %s, want %d %s: %s", e.Code, e.Kind, tc.code, tc.kind, r.stderr)
			}
			if r.code != tc.exit {
				t.Errorf("exit code %d, want %d", r.code, tc.exit)
			}
		})
	}

	t.Run("attempts in details", func(t *testing.T) {
		t.Parallel()
		r := runWith(map[string]string{"NATS_URL": closed}, "get", "--id", "x1", "-o", "json", "--retries", "3", "--nats-reconnect-wait", "1ms")
		e := jsonError(t, r)
		if e.Details["attempts"] != float64(4) || e.Details["url"] != closed {
			t.Errorf("details %v, want 4 attempts at %s", e.Details, closed)
		}
	})
	t.Run("no responders names the command id", func(t *testing.T) {
		t.Parallel()
		r := runWith(map[string]string{"NATS_URL": silent.ClientURL()}, "assign-owner", "--id", "x1", "--owner", "o1", "-o", "json", "--retries", "0")
		if e := jsonError(t, r); e.Details["command_id"] != "cmd-fixed" {
			t.Errorf("details %v, want command_id cmd-fixed", e.Details)
		}
	})
}

// TestRunRetriesConnection: --retries covers a NATS server that cannot be reached yet: the
// server starts only after cimctl's first attempt failed, and the command still gets its reply.
func TestRunRetriesConnection(t *testing.T) {
	t.Parallel()
	node := natstest.RunServer(t)
	node.Shutdown()
	logs := &testkit.LogBuffer{}
	var stdout, stderr bytes.Buffer
	c := &cli.CLI{Stdout: &stdout, Stderr: &stderr,
		LookupEnv:    func(k string) (string, bool) { return node.ClientURL(), k == "NATS_URL" },
		NewCommandID: func() string { return "cmd-fixed" },
		ConnectLog:   zerolog.New(logs)}
	done := make(chan int, 1)
	go func() {
		done <- c.Run(context.Background(), []string{"get", "--id", "x1", "--retries", "1000", "--nats-reconnect-wait", "20ms"})
	}()
	if err := testkit.Poll(t.Context(), func() bool { return strings.Contains(logs.String(), "nats unreachable, retrying") }); err != nil {
		t.Fatalf("no failed attempt logged (%v); logs:\n%s", err, logs)
	}
	node.Restart()
	cannedService(t, node.ClientURL())
	select {
	case code := <-done:
		if code != cli.ExitOK || !strings.Contains(stdout.String(), "hostname         web-01.example.com") {
			t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, cli.ExitOK, stdout.String(), stderr.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("cimctl did not finish")
	}
}
