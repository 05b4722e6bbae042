package ops

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func readyReport(t *testing.T, body string) ReadyReport {
	t.Helper()
	var r ReadyReport
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("/readyz body is not JSON: %v: %s", err, body)
	}
	return r
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	s := New("127.0.0.1:0", nil, zerolog.Nop())
	s.AddReadiness("broken", func(context.Context) error { return errors.New("down") })
	s.SetShuttingDown()
	// Alive whatever readiness says: a restart would not help a service that is merely not ready.
	if code, body := get(t, s.Handler(), PathHealth); code != http.StatusOK || body != "ok" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	s := New("127.0.0.1:0", nil, zerolog.Nop())
	if code, body := get(t, s.Handler(), PathReady); code != http.StatusOK || !readyReport(t, body).Ready {
		t.Fatalf("no checks: %d %s", code, body)
	}

	natsUp := true
	s.AddReadiness("nats", func(context.Context) error {
		if natsUp {
			return nil
		}
		return errors.New("nats connection is not connected: status RECONNECTING")
	})
	s.AddReadiness("stream", func(context.Context) error { return nil })
	code, body := get(t, s.Handler(), PathReady)
	if r := readyReport(t, body); code != http.StatusOK || !r.Ready || r.Checks["nats"] != "ok" || r.Checks["stream"] != "ok" {
		t.Fatalf("all passing: %d %s", code, body)
	}

	natsUp = false
	code, body = get(t, s.Handler(), PathReady)
	r := readyReport(t, body)
	if code != http.StatusServiceUnavailable || r.Ready || len(r.Failing) != 1 || r.Failing[0] != "nats" ||
		!strings.Contains(r.Checks["nats"], "RECONNECTING") || r.Checks["stream"] != "ok" {
		t.Fatalf("nats failing: %d %s", code, body)
	}

	natsUp = true
	s.SetShuttingDown()
	code, body = get(t, s.Handler(), PathReady)
	if r := readyReport(t, body); code != http.StatusServiceUnavailable || r.Ready || !r.ShuttingDown {
		t.Fatalf("shutting down: %d %s", code, body)
	}
}

func TestReadyzCheckGetsDeadline(t *testing.T) {
	t.Parallel()
	s := New("127.0.0.1:0", nil, zerolog.Nop())
	s.CheckTimeout = 10 * time.Millisecond
	s.AddReadiness("hangs", func(ctx context.Context) error {
		<-ctx.Done() // a check that never answers by itself
		return ctx.Err()
	})
	code, body := get(t, s.Handler(), PathReady)
	if r := readyReport(t, body); code != http.StatusServiceUnavailable || !strings.Contains(r.Checks["hangs"], "deadline exceeded") {
		t.Fatalf("hanging check: %d %s", code, body)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	commands := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "registry_commands_total", Help: "commands"}, []string{"command", "outcome"})
	reg.MustRegister(commands)
	commands.WithLabelValues("register", "ok").Add(3)
	s := New("127.0.0.1:0", reg, zerolog.Nop())
	New("127.0.0.1:0", reg, zerolog.Nop()) // a second server on the same registry must not panic

	code, body := get(t, s.Handler(), PathMetrics)
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{`registry_commands_total{command="register",outcome="ok"} 3`, "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestRunServesAndStopsGracefully(t *testing.T) {
	t.Parallel()
	s := New("127.0.0.1:0", nil, zerolog.Nop())
	if s.Addr() != "" {
		t.Fatalf("Addr before Listen = %q", s.Addr())
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if strings.HasSuffix(addr, ":0") {
		t.Fatalf("Addr = %q, want the real port", addr)
	}

	entered, release := make(chan struct{}), make(chan struct{})
	s.AddReadiness("slow", func(context.Context) error {
		close(entered)
		<-release
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx) }()

	if code, body := httpGet(t, "http://"+addr+PathHealth); code != http.StatusOK || body != "ok" {
		t.Fatalf("/healthz over TCP = %d %q", code, body)
	}
	inFlight := make(chan int, 1)
	go func() { code, _ := httpGet(t, "http://"+addr+PathReady); inFlight <- code }()
	<-entered
	cancel()
	testkit.WaitFor(t, context.Background(), "the server to start its shutdown", s.ShuttingDown)
	select {
	case err := <-runErr:
		t.Fatalf("Run returned (%v) with a request in flight", err)
	default:
	}
	close(release)
	if code := <-inFlight; code != http.StatusOK && code != http.StatusServiceUnavailable {
		t.Fatalf("request in flight got %d", code)
	}
	if err := <-runErr; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, err := http.Get("http://" + addr + PathHealth); err == nil {
		t.Fatal("still serving after Run returned")
	}
}

func TestRunReportsBusyAddress(t *testing.T) {
	t.Parallel()
	a := New("127.0.0.1:0", nil, zerolog.Nop())
	if err := a.Listen(); err != nil {
		t.Fatal(err)
	}
	b := New(a.Addr(), nil, zerolog.Nop())
	if err := b.Run(context.Background()); err == nil || !strings.Contains(err.Error(), a.Addr()) {
		t.Fatalf("Run on a busy address: %v", err)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return 0, ""
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

func TestRegisterFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ start, want string }{{"", ":8080"}, {":9102", ":9102"}} {
		c := Config{Addr: tc.start}
		fs := flag.NewFlagSet("svc", flag.ContinueOnError)
		c.RegisterFlags(fs)
		if f := fs.Lookup(FlagAddr); f == nil || f.DefValue != tc.want || c.Addr != tc.want {
			t.Errorf("start %q: flag %+v, addr %q", tc.start, f, c.Addr)
		}
	}
}

// A service with replicas says which role this one has, whether it is ready or not.
func TestReadyzReportsTheRole(t *testing.T) {
	t.Parallel()
	s := New("127.0.0.1:0", nil, zerolog.Nop())
	if _, body := get(t, s.Handler(), PathReady); strings.Contains(body, `"role"`) {
		t.Fatalf("/readyz of a service without role = %s", body)
	}
	role := "standby"
	s.SetRole(func() string { return role })
	code, body := get(t, s.Handler(), PathReady)
	if r := readyReport(t, body); code != http.StatusOK || !r.Ready || r.Role != "standby" {
		t.Fatalf("/readyz = %d %s, want 200 with role standby", code, body)
	}
	role = "active"
	s.AddReadiness("broken", func(context.Context) error { return errors.New("down") })
	code, body = get(t, s.Handler(), PathReady)
	if r := readyReport(t, body); code != http.StatusServiceUnavailable || r.Role != "active" {
		t.Fatalf("/readyz = %d %s, want 503 with role active", code, body)
	}
}
