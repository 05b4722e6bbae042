package accesscontrol

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/testkit"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// password is every test user's password.
func password(user string) string { return "secret-of-" + user }

// serverLog keeps the permission violations an embedded server logs, and from its protocol
// trace the subjects each user published to and subscribed to.
type serverLog struct {
	mu         sync.Mutex
	violations []string
	published  map[string]map[string]bool // user -> subjects
	subscribed map[string]map[string]bool
}

func newServerLog() *serverLog {
	return &serverLog{published: map[string]map[string]bool{}, subscribed: map[string]map[string]bool{}}
}

// traceUser finds the user in a client's log prefix: ... - "<account>/<user>" - <<- [PUB ...].
var traceUser = regexp.MustCompile(`"` + Account + `/(?:user:)?([^"]+)"`)

func (l *serverLog) Tracef(format string, v ...any) {
	line := fmt.Sprintf(format, v...)
	i := strings.Index(line, "<<- [")
	if i < 0 {
		return
	}
	m := traceUser.FindStringSubmatch(line[:i])
	fields := strings.Fields(strings.TrimSuffix(line[i+len("<<- ["):], "]"))
	if m == nil || len(fields) < 2 {
		return
	}
	var into map[string]map[string]bool
	switch fields[0] {
	case "PUB", "HPUB":
		into = l.published
	case "SUB":
		into = l.subscribed
	default:
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if into[m[1]] == nil {
		into[m[1]] = map[string]bool{}
	}
	into[m[1]][fields[1]] = true
}

// unused returns the patterns of allow that none of subjects matches.
func unused(allow []string, subjects map[string]bool) []string {
	var out []string
	for _, pattern := range allow {
		used := false
		for s := range subjects {
			if server.SubjectsCollide(pattern, s) {
				used = true
				break
			}
		}
		if !used {
			out = append(out, pattern)
		}
	}
	return out
}

// Unused returns, per user, the allowed subjects the user never published to or subscribed to.
func (l *serverLog) Unused(users []User) map[string][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]string{}
	for _, u := range users {
		if u.Permissions == nil {
			continue
		}
		for _, p := range unused(u.Permissions.PublishAllow, l.published[u.Name]) {
			out[u.Name] = append(out[u.Name], "publish "+p)
		}
		for _, p := range unused(u.Permissions.SubscribeAllow, l.subscribed[u.Name]) {
			out[u.Name] = append(out[u.Name], "subscribe "+p)
		}
	}
	return out
}

func (l *serverLog) Errorf(format string, v ...any) {
	line := fmt.Sprintf(format, v...)
	if strings.Contains(line, "Violation") {
		l.mu.Lock()
		l.violations = append(l.violations, line)
		l.mu.Unlock()
	}
}
func (l *serverLog) Noticef(string, ...any) {}
func (l *serverLog) Warnf(string, ...any)   {}
func (l *serverLog) Fatalf(string, ...any)  {}
func (l *serverLog) Debugf(string, ...any)  {}

// Violations returns the violations logged so far.
func (l *serverLog) Violations() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.violations...)
}

// startServer starts an embedded JetStream server whose only users are the table's, in account
// Account with JetStream enabled, and records the permission violations it logs.
func startServer(t *testing.T) (*natstest.Node, *serverLog) {
	t.Helper()
	node := natstest.RunServer(t, natstest.WithOptions(func(o *server.Options) {
		acc := server.NewAccount(Account)
		o.Accounts = []*server.Account{acc}
		o.Users = ServerUsers(acc, password)
	}))
	acc, err := node.Server().LookupAccount(Account)
	if err != nil {
		t.Fatal(err)
	}
	// Options cannot say "jetstream: enabled" for an account (the configuration file can); the
	// server's own call does it, with the default (unlimited) limits.
	if err := acc.EnableJetStream(nil, nil); err != nil {
		t.Fatalf("enable JetStream for account %s: %v", Account, err)
	}
	log := newServerLog()
	node.Server().SetLogger(log, false, true)
	return node, log
}

// conn is a test's own connection as one user, with its asynchronous errors.
type conn struct {
	user string
	nc   *nats.Conn
	js   jetstream.JetStream
	errs chan error
}

func connectAs(t *testing.T, url, user string) *conn {
	t.Helper()
	c := &conn{user: user, errs: make(chan error, 256)}
	opts := []nats.Option{nats.Name(user), nats.UserInfo(user, password(user)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case c.errs <- err:
			default:
			}
		})}
	if u, ok := Lookup(user); ok && u.Permissions != nil {
		// As the services connect: a restricted user may subscribe to its own inboxes only.
		opts = append(opts, nats.CustomInboxPrefix(InboxPrefix(user)))
	}
	c.nc = natstest.Connect(t, url, opts...)
	js, err := jetstream.New(c.nc)
	if err != nil {
		t.Fatal(err)
	}
	c.js = js
	return c
}

// refused runs action as c's user and requires the server to refuse it with a permissions
// violation naming kind ("Publish" or "Subscription") and a subject that starts with subject (a
// consumer's name may be random). A refused request gets no
// reply at all, so the action's context is cancelled once the violation has arrived.
func (c *conn) refused(t *testing.T, ctx context.Context, kind, subject string, action func(context.Context) error) {
	t.Helper()
	for len(c.errs) > 0 {
		<-c.errs
	}
	// The violation comes back in a round trip; the bound only keeps one missing refusal from
	// starving the others.
	ctx, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- action(actx) }()
	defer func() {
		cancel()
		<-done
	}()
	want := fmt.Sprintf("Permissions Violation for %s to %q", kind, subject)
	want = strings.TrimSuffix(want, `"`)
	for {
		select {
		case err := <-c.errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), want) {
				return
			}
		case <-ctx.Done():
			t.Fatalf("%s: no permissions violation for %s to %s", c.user, kind, subject)
		}
	}
}

func serviceLogs(t *testing.T) zerolog.Logger {
	b := &testkit.LogBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("service logs (warnings and errors):\n%s", b.String())
		}
	})
	return zerolog.New(b).Level(zerolog.WarnLevel).With().Timestamp().Logger()
}

// service is one service running in-process with Run, stopped by stop (or when the test ends).
type service struct {
	name   string
	cancel context.CancelFunc
	done   chan error
}

func runService(t *testing.T, name string, run func(context.Context) error) *service {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &service{name: name, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- run(ctx) }()
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop cancels the service and requires a clean exit.
func (s *service) stop(t *testing.T) {
	t.Helper()
	if s.done == nil {
		return
	}
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("%s: %v", s.name, err)
		}
	case <-time.After(time.Minute):
		t.Errorf("%s did not stop", s.name)
	}
	s.done = nil
}

// waitFor polls cond until it holds or ctx ends; then it fails with the violations the server
// logged, the likely reason.
func waitFor(t *testing.T, ctx context.Context, log *serverLog, what string, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, ctx, what, func() bool {
		// A refused service retries in vain: report the refusal at once.
		if v := log.Violations(); len(v) > 0 {
			t.Fatalf("waiting for %s: the server refused actions of the services:\n%s", what, strings.Join(v, "\n"))
		}
		return cond()
	})
}
