package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/cim-infra/registry/internal/cli"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/nats-io/nats.go/micro"
)

// replyError answers the way the command service does: micro's error headers and an api.Error
// body.
func replyError(req micro.Request, e api.Error) {
	body, _ := json.Marshal(e)
	_ = req.Error(fmt.Sprint(e.Code), e.Message, body)
}

// cannedService is a micro service on the real subjects whose replies depend on the request:
// it checks that cimctl speaks the micro wire format and maps every error class to its exit code.
func cannedService(t *testing.T, url string) {
	t.Helper()
	nc := natstest.Connect(t, url)
	svc, err := micro.AddService(nc, micro.Config{Name: "canned", Version: "0.0.1", QueueGroup: api.QueueGroup})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	endpoints := map[string]micro.HandlerFunc{
		api.CmdRegister: func(req micro.Request) {
			var r api.Register
			_ = json.Unmarshal(req.Data(), &r)
			if strings.HasPrefix(r.Hostname, "-") {
				replyError(req, api.Error{Code: 400, Kind: "invalid_field", Field: "hostname", Message: "label starts with '-'"})
				return
			}
			_ = req.RespondJSON(api.CommandReply{AggregateID: "agg-1", Version: 1,
				Events: []api.EventRef{{Type: "ResourceRegistered", ID: r.CommandID, Sequence: 1}}})
		},
		api.CmdChangeStatus: func(req micro.Request) {
			replyError(req, api.Error{Code: 409, Kind: "invalid_transition", Message: "decommissioned is terminal",
				Details: map[string]any{"from": "decommissioned", "to": "active"}})
		},
		api.CmdAssignAssetTag: func(req micro.Request) {
			replyError(req, api.Error{Code: 503, Kind: "unavailable", Message: "event store unreachable"})
		},
		api.QueryGet: func(req micro.Request) {
			var q api.Get
			_ = json.Unmarshal(req.Data(), &q)
			switch q.AggregateID {
			case "missing":
				replyError(req, api.Error{Code: 404, Kind: "not_registered", Message: "no resource missing"})
			case "boom":
				_ = req.Error("500", "handler panicked", nil)
			default:
				_ = req.RespondJSON(api.Resource{ID: q.AggregateID, Hostname: "web-01.example.com", Status: "active", Version: 3})
			}
		},
	}
	for name, h := range endpoints {
		subject := api.CommandSubject(name)
		if name == api.QueryGet {
			subject = api.QuerySubject(name)
		}
		if err := svc.AddEndpoint(name, h, micro.WithEndpointSubject(subject)); err != nil {
			t.Fatal(err)
		}
	}
	// The endpoints' subscriptions reach the server before cimctl's first request.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

type run struct {
	code           int
	stdout, stderr string
}

// runCLI runs cimctl against the NATS server at url, with "cmd-fixed" as the id of every
// command given without --command-id.
func runCLI(t *testing.T, url string, args ...string) run {
	t.Helper()
	return runCLIWithIDs(t, url, func() string { return "cmd-fixed" }, args...)
}

func runCLIWithIDs(t *testing.T, url string, newID func() string, args ...string) run {
	t.Helper()
	var stdout, stderr bytes.Buffer
	c := &cli.CLI{Stdout: &stdout, Stderr: &stderr,
		LookupEnv:    func(k string) (string, bool) { return url, k == "NATS_URL" },
		NewCommandID: newID}
	code := c.Run(context.Background(), append(args, "--retries", "0"))
	return run{code, stdout.String(), stderr.String()}
}

func TestRunExitCodesAgainstMicroService(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	cannedService(t, srv.ClientURL())
	cases := []struct {
		args   []string
		code   int
		stdout string // a substring, or "" for empty
		stderr string // a substring, or "" for empty
	}{
		{[]string{"register", "--hostname", "web-01.example.com", "--type", "vm"}, cli.ExitOK,
			"event     ResourceRegistered  seq 1  id cmd-fixed", ""},
		{[]string{"register", "--hostname", "web-01.example.com", "--type", "vm", "-o", "json"}, cli.ExitOK,
			`"aggregate_id": "agg-1"`, ""},
		{[]string{"register", "--hostname", "-web", "--type", "vm"}, cli.ExitUsage,
			"", "cimctl register: 400 invalid_field: label starts with '-' (field hostname)"},
		{[]string{"register", "--hostname", "-web", "--type", "vm", "-o", "json"}, cli.ExitUsage,
			"", `{"code":400,"kind":"invalid_field","message":"label starts with '-'","field":"hostname"}`},
		{[]string{"get", "--id", "missing"}, cli.ExitNotFound, "", "404 not_registered: no resource missing"},
		{[]string{"get", "--id", "x1"}, cli.ExitOK, "hostname         web-01.example.com", ""},
		{[]string{"get", "--id", "boom"}, cli.ExitError, "", "500 error: handler panicked"},
		{[]string{"change-status", "--id", "x1", "--status", "active"}, cli.ExitConflict,
			"", "409 invalid_transition: decommissioned is terminal\n  details: from=decommissioned to=active"},
		{[]string{"assign-asset-tag", "--id", "x1", "--tag", "A-1"}, cli.ExitUnavailable,
			"", "re-run it with --command-id cmd-fixed"},
		{[]string{"assign-owner", "--id", "x1", "--owner", "o1", "--command-id", "mine"}, cli.ExitUnavailable,
			"", "503 no_responders"},
		{[]string{"assign-owner", "--id", "x1", "--owner", "o1", "--command-id", "mine"}, cli.ExitUnavailable,
			"", "re-run it with --command-id mine"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			r := runCLI(t, srv.ClientURL(), tc.args...)
			if r.code != tc.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tc.code, r.stdout, r.stderr)
			}
			for _, out := range []struct{ name, got, want string }{{"stdout", r.stdout, tc.stdout}, {"stderr", r.stderr, tc.stderr}} {
				if out.want == "" && out.got != "" {
					t.Errorf("%s is not empty:\n%s", out.name, out.got)
				}
				if !strings.Contains(out.got, out.want) {
					t.Errorf("%s does not hold %q:\n%s", out.name, out.want, out.got)
				}
			}
		})
	}
}

func TestRunUnreachableNATS(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + l.Addr().String()
	_ = l.Close() // nothing listens there any more
	r := runCLI(t, url, "get", "--id", "x1")
	if r.code != cli.ExitUnavailable || !strings.Contains(r.stderr, "connect to "+url+": no server reached in 1 attempt") {
		t.Errorf("exit code %d, want %d; stderr:\n%s", r.code, cli.ExitUnavailable, r.stderr)
	}
}
