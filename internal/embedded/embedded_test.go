package embedded

import (
	"context"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/config"
	"github.com/cim-infra/registry/internal/testkit"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func start(t *testing.T, cfg Config, log zerolog.Logger) (*Server, string) {
	t.Helper()
	s, url, err := Start(testCtx(t), cfg, log)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s, url
}

func TestStoreSurvivesRestart(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	dir := t.TempDir()
	logs := &testkit.LogBuffer{}
	cfg := Config{StoreDir: dir, Port: testkit.FreePort(t)}

	s, url := start(t, cfg, zerolog.New(logs))
	if s.ClientURL() != url || !strings.HasSuffix(url, ":"+itoa(cfg.Port)) {
		t.Fatalf("url %q, ClientURL %q, port %d", url, s.ClientURL(), cfg.Port)
	}
	if js := s.NATSServer().JetStreamConfig(); !js.SyncAlways {
		t.Errorf("default sync policy did not reach the server: %+v", js)
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctx, "events.a1", []byte("registered"))
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	started := logs.String()
	for _, want := range []string{`"message":"embedded NATS server with JetStream started`, `"store_dir":"` + dir, `"url":"` + url, `"component":"nats-server"`, `"sync":"always"`, "embedded NATS server stopped"} {
		if !strings.Contains(started, want) {
			t.Errorf("logs lack %s:\n%s", want, started)
		}
	}

	// Same store, another port: the stream and its message are found again.
	_, url2 := start(t, Config{StoreDir: dir, Port: RandomPort}, zerolog.Nop())
	nc2, err := nats.Connect(url2)
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	js2, err := jetstream.New(nc2)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js2.Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatalf("stream after restart: %v", err)
	}
	msg, err := stream.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatalf("message after restart: %v", err)
	}
	if string(msg.Data) != "registered" || msg.Subject != "events.a1" {
		t.Fatalf("message after restart = %s %q", msg.Subject, msg.Data)
	}
}

func TestSyncIntervalReachesServer(t *testing.T) {
	t.Parallel()
	s, _ := start(t, Config{StoreDir: t.TempDir(), Port: RandomPort, Sync: SyncPolicy{Interval: 5 * time.Minute}}, zerolog.Nop())
	js := s.NATSServer().JetStreamConfig()
	if js.SyncAlways || js.SyncInterval != 5*time.Minute {
		t.Fatalf("server sync = always %v interval %s", js.SyncAlways, js.SyncInterval)
	}
}

func TestStartRefusesBusyPort(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	_, _, err = Start(testCtx(t), Config{StoreDir: t.TempDir(), Port: port}, zerolog.Nop())
	if !errors.Is(err, ErrPortInUse) {
		t.Fatalf("error = %v, want ErrPortInUse", err)
	}
	for _, want := range []string{"127.0.0.1:" + itoa(port), "-nats-url", "-embedded-port"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestStartReportsServerFailure(t *testing.T) {
	t.Parallel()
	// A store directory that is a file: JetStream cannot start, and says so through Fatalf.
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &testkit.LogBuffer{}
	_, _, err := Start(testCtx(t), Config{StoreDir: file, Port: RandomPort}, zerolog.New(logs))
	if !errors.Is(err, ErrStart) {
		t.Fatalf("error = %v, want ErrStart", err)
	}
	t.Logf("refused as expected: %v", err)
	if !strings.Contains(logs.String(), `"fatal":true`) {
		t.Errorf("server's fatal line not logged:\n%s", logs)
	}
}

func TestSyncPolicyFlagValue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		want    SyncPolicy
		wantErr bool
	}{
		{"always", SyncPolicy{}, false},
		{"2m", SyncPolicy{Interval: 2 * time.Minute}, false},
		{"500ms", SyncPolicy{Interval: 500 * time.Millisecond}, false},
		{"0s", SyncPolicy{}, true},
		{"-1m", SyncPolicy{}, true},
		{"sometimes", SyncPolicy{}, true},
		{"", SyncPolicy{}, true},
	} {
		var p SyncPolicy
		err := p.Set(tc.in)
		if tc.wantErr {
			if !errors.Is(err, ErrInvalidSyncPolicy) || !strings.Contains(err.Error(), `"`+tc.in+`"`) {
				t.Errorf("Set(%q) error = %v, want ErrInvalidSyncPolicy naming the value", tc.in, err)
			}
			continue
		}
		if err != nil || p != tc.want {
			t.Errorf("Set(%q) = %+v, %v; want %+v", tc.in, p, err, tc.want)
		}
		var back SyncPolicy
		if err := back.Set(p.String()); err != nil || back != p {
			t.Errorf("String() %q does not parse back: %+v %v", p.String(), back, err)
		}
	}
}

func TestRegisterFlags(t *testing.T) {
	t.Parallel()
	var c Config
	fs := flag.NewFlagSet("svc", flag.ContinueOnError)
	c.RegisterFlags(fs)
	defaults := map[string]string{}
	for _, s := range config.Describe(fs) {
		defaults[s.Flag] = s.Default
	}
	want := map[string]string{FlagStoreDir: "./data", FlagHost: "127.0.0.1", FlagPort: "4222", FlagSync: "always"}
	for f, d := range want {
		if defaults[f] != d {
			t.Errorf("-%s default = %q, want %q", f, defaults[f], d)
		}
	}
	if len(defaults) != len(want) {
		t.Errorf("flags = %v", defaults)
	}
	env := map[string]string{"EMBEDDED_SYNC": "1m", "EMBEDDED_PORT": "14222"}
	if err := config.ParseWithLookup(fs, nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if c.Sync.Interval != time.Minute || c.Port != 14222 || c.StoreDir != "./data" {
		t.Errorf("config = %+v", c)
	}
	var c2 Config
	fs2 := flag.NewFlagSet("svc", flag.ContinueOnError)
	c2.RegisterFlags(fs2)
	err := config.ParseWithLookup(fs2, nil, func(k string) (string, bool) {
		if k == "EMBEDDED_SYNC" {
			return "never", true
		}
		return "", false
	})
	if !errors.Is(err, ErrInvalidSyncPolicy) || !strings.Contains(err.Error(), "EMBEDDED_SYNC") {
		t.Errorf("bad EMBEDDED_SYNC: error = %v", err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
