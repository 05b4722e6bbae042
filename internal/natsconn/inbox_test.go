package natsconn

import (
	"context"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/cim-infra/registry/internal/config"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/testkit"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// TestInboxPrefix runs a server whose user may subscribe only to _INBOX_svc.>: with
// -nats-inbox-prefix _INBOX_svc, a request and a JetStream API call get their replies; without
// it, the server refuses the connection's subscription to _INBOX.>, which shows the permission
// is what the prefix satisfies.
func TestInboxPrefix(t *testing.T) {
	t.Parallel()
	n := natstest.RunServer(t, natstest.WithOptions(func(o *server.Options) {
		o.Users = []*server.User{{Username: "svc", Password: "pw", Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{"ping", "$JS.API.INFO"}},
			Subscribe: &server.SubjectPermission{Allow: []string{"ping", "_INBOX_svc.>"}},
			Response:  &server.ResponsePermission{MaxMsgs: 1},
		}}}
	}))
	cfg := Config{URL: n.ClientURL(), User: "svc", Password: "pw", InboxPrefix: "_INBOX_svc"}

	nc, err := Connect(ctxFor(t), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	replyTo := make(chan string, 1)
	if _, err := nc.Subscribe("ping", func(m *nats.Msg) {
		replyTo <- m.Reply
		_ = m.Respond([]byte("pong"))
	}); err != nil {
		t.Fatal(err)
	}
	reply, err := nc.RequestWithContext(ctxFor(t), "ping", nil)
	if err != nil || string(reply.Data) != "pong" {
		t.Fatalf("request with the inbox prefix: %v", err)
	}
	if got := <-replyTo; !strings.HasPrefix(got, "_INBOX_svc.") {
		t.Errorf("reply subject %q, want it under _INBOX_svc.", got)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(ctxFor(t)); err != nil {
		t.Errorf("JetStream API call with the inbox prefix: %v", err)
	}

	logs := &testkit.LogBuffer{}
	cfg.InboxPrefix = ""
	plain, err := Connect(ctxFor(t), cfg, zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	ctx, cancel := context.WithCancel(ctxFor(t))
	done := make(chan error, 1)
	go func() {
		_, err := plain.RequestWithContext(ctx, "ping", nil)
		done <- err
	}()
	testkit.WaitFor(t, ctxFor(t), "the refusal of _INBOX.>", func() bool {
		return strings.Contains(logs.String(), `Permissions Violation for Subscription to \"_INBOX.`)
	})
	cancel()
	if err := <-done; err == nil {
		t.Error("a request without the prefix got a reply through a refused inbox")
	}
}

func TestInboxPrefixValidation(t *testing.T) {
	t.Parallel()
	for prefix, wantErr := range map[string]string{
		"_INBOX_command-service": "",
		"_INBOX.svc":             "",
		"_INBOX_svc.":            "empty token",
		".svc":                   "empty token",
		"_INBOX..svc":            "empty token",
		"_INBOX.*":               "wildcard",
		"_INBOX.>":               "wildcard",
		"_INBOX_a>b":             "wildcard",
		"_INBOX svc":             "white space",
		"_INBOX\tsvc":            "white space",
	} {
		_, err := Config{InboxPrefix: prefix}.Options()
		if wantErr == "" {
			if err != nil {
				t.Errorf("prefix %q: %v", prefix, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "-nats-inbox-prefix (NATS_INBOX_PREFIX)") ||
			!strings.Contains(err.Error(), wantErr) {
			t.Errorf("prefix %q: error %v, want ErrInvalidConfig naming -nats-inbox-prefix and %q", prefix, err, wantErr)
		}
	}
}

func TestInboxPrefixFromEnvironment(t *testing.T) {
	t.Parallel()
	var c Config
	fs := flag.NewFlagSet("svc", flag.ContinueOnError)
	c.RegisterFlags(fs)
	env := map[string]string{"NATS_INBOX_PREFIX": "_INBOX_svc"}
	if err := config.ParseWithLookup(fs, nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if c.InboxPrefix != "_INBOX_svc" {
		t.Errorf("InboxPrefix = %q from NATS_INBOX_PREFIX", c.InboxPrefix)
	}
	opts, err := c.Options()
	if err != nil {
		t.Fatal(err)
	}
	o := nats.GetDefaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			t.Fatal(err)
		}
	}
	if o.InboxPrefix != "_INBOX_svc" {
		t.Errorf("nats.Options.InboxPrefix = %q", o.InboxPrefix)
	}
}
