// Package ops serves a service's operations endpoints over HTTP: /healthz (the process is
// alive), /readyz (it can do its work: every readiness check passes and it is not shutting
// down) and /metrics (Prometheus, with Go runtime and process metrics).
package ops

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Paths served.
const (
	PathHealth  = "/healthz"
	PathReady   = "/readyz"
	PathMetrics = "/metrics"
)

// FlagAddr is the flag Config.RegisterFlags defines (environment variable HTTP_ADDR).
const FlagAddr = "http-addr"

// Defaults of the Server's timeouts.
const (
	DefaultCheckTimeout    = 2 * time.Second
	DefaultShutdownTimeout = 5 * time.Second
)

// Config holds the operations server's settings.
type Config struct {
	// Addr is the listen address, host:port; port 0 picks a free port.
	Addr string
}

// RegisterFlags defines -http-addr on fs with c.Addr as its default, ":8080" if empty.
// Services that may run side by side on one machine should each set their own default.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	if c.Addr == "" {
		c.Addr = ":8080"
	}
	fs.StringVar(&c.Addr, FlagAddr, c.Addr, "listen address of the operations HTTP server ("+PathHealth+", "+PathReady+", "+PathMetrics+")")
}

// Check reports whether one thing the service needs is usable; a nil error means ready. It must
// return promptly once ctx is done.
type Check func(ctx context.Context) error

// Server is the operations HTTP server. Set its exported fields before Run.
type Server struct {
	// CheckTimeout bounds one /readyz evaluation of all checks.
	CheckTimeout time.Duration
	// ShutdownTimeout bounds how long Run waits for requests in flight once its context is done.
	ShutdownTimeout time.Duration

	addr         string
	log          zerolog.Logger
	http         *http.Server
	shuttingDown atomic.Bool

	mu     sync.Mutex
	checks map[string]Check
	role   func() string
	ln     net.Listener
}

// New returns a server that will listen on addr and expose reg at /metrics, after registering
// the Go runtime and process collectors in it (unless reg already has them). A nil reg gets a
// new registry.
func New(addr string, reg *prometheus.Registry, log zerolog.Logger) *Server {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil && !errors.As(err, &prometheus.AlreadyRegisteredError{}) {
			log.Warn().Err(err).Msg("ops: collector not registered")
		}
	}
	s := &Server{
		CheckTimeout:    DefaultCheckTimeout,
		ShutdownTimeout: DefaultShutdownTimeout,
		addr:            addr,
		log:             log.With().Str("component", "ops").Logger(),
		checks:          map[string]Check{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathHealth, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("GET "+PathReady, s.serveReady)
	mux.Handle("GET "+PathMetrics, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return s
}

// Handler returns the server's HTTP handler, for tests with httptest.
func (s *Server) Handler() http.Handler { return s.http.Handler }

// AddReadiness adds (or replaces) the named readiness check.
func (s *Server) AddReadiness(name string, check Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = check
}

// SetRole makes /readyz report role() in its body, field "role" (for example "active" or
// "standby" for a replica of a pinned consumer). The role does not change the status.
func (s *Server) SetRole(role func() string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.role = role
}

// SetShuttingDown makes /readyz fail from now on, so that load balancers stop sending work
// while the service finishes what it has. Run calls it when its context is done; a service
// calls it earlier, as soon as it starts to drain.
func (s *Server) SetShuttingDown() { s.shuttingDown.Store(true) }

// ShuttingDown reports whether SetShuttingDown was called.
func (s *Server) ShuttingDown() bool { return s.shuttingDown.Load() }

// Listen binds the listen address, so that Addr is known before Run. Run calls it if needed.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("ops: listen on %s: %w", s.addr, err)
	}
	s.ln = ln
	return nil
}

// Addr returns the address listened on (with the real port when the configured one was 0), or
// "" before Listen.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Run serves until ctx is done, then marks the service as shutting down and stops gracefully,
// waiting up to ShutdownTimeout for requests in flight. It returns nil after a clean stop.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	s.log.Info().Str("addr", ln.Addr().String()).Msg("ops server listening")

	served := make(chan error, 1)
	go func() { served <- s.http.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("ops: serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	s.SetShuttingDown()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.ShutdownTimeout)
	defer cancel()
	if err := s.http.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("ops: shutdown: %w", err)
	}
	s.log.Info().Msg("ops server stopped")
	return nil
}

// ReadyReport is the JSON body of /readyz.
type ReadyReport struct {
	// Ready is true when the status is 200.
	Ready bool `json:"ready"`
	// ShuttingDown is true once SetShuttingDown was called; checks are then not run.
	ShuttingDown bool `json:"shutting_down"`
	// Checks maps every check's name to "ok" or its error.
	Checks map[string]string `json:"checks,omitempty"`
	// Failing lists the names of failing checks, sorted.
	Failing []string `json:"failing,omitempty"`
	// Role is the service's role among its replicas, when it has one (see SetRole).
	Role string `json:"role,omitempty"`
}

func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	report := s.evaluate(r.Context())
	status := http.StatusOK
	if !report.Ready {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(report)
}

// evaluate runs every check concurrently, so that a slow one costs its own time only.
func (s *Server) evaluate(ctx context.Context) ReadyReport {
	s.mu.Lock()
	checks := make(map[string]Check, len(s.checks))
	for name, c := range s.checks {
		checks[name] = c
	}
	role := s.role
	s.mu.Unlock()
	var roleName string
	if role != nil {
		roleName = role()
	}
	if s.ShuttingDown() {
		return ReadyReport{ShuttingDown: true, Role: roleName}
	}

	ctx, cancel := context.WithTimeout(ctx, s.CheckTimeout)
	defer cancel()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results = make(map[string]string, len(checks))
		failing []string
	)
	for name, check := range checks {
		wg.Go(func() {
			err := check(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				results[name] = err.Error()
				failing = append(failing, name)
				return
			}
			results[name] = "ok"
		})
	}
	wg.Wait()
	sort.Strings(failing)
	if len(failing) > 0 {
		s.log.Warn().Strs("failing", failing).Msg("not ready")
	}
	return ReadyReport{Ready: len(failing) == 0 && !s.ShuttingDown(), ShuttingDown: s.ShuttingDown(), Checks: results,
		Failing: failing, Role: roleName}
}
