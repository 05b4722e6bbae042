// Package embedded runs a JetStream-enabled nats-server inside the process, for a service run
// without a NATS URL: one binary is then a complete registry on one machine. The server keeps
// its files in a directory, so a restart finds every stream again, and writes its own logs
// through the service's zerolog logger.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
)

// ErrPortInUse is returned by Start when something already listens on the configured address.
var ErrPortInUse = errors.New("embedded: address already in use")

// ErrStart is returned by Start when the server fails while starting; the message carries the
// server's own reason.
var ErrStart = errors.New("embedded: nats-server failed to start")

// Server is a running embedded nats-server.
type Server struct {
	srv *server.Server
	url string
	log zerolog.Logger
}

// Start starts a JetStream server as cfg says and returns once it accepts clients, with the URL
// clients connect to. ctx bounds the start only (recovering a large store can take a while);
// stop the server with Shutdown.
func Start(ctx context.Context, cfg Config, log zerolog.Logger) (*Server, string, error) {
	cfg = cfg.withDefaults()
	storeDir, err := filepath.Abs(cfg.StoreDir)
	if err != nil {
		return nil, "", fmt.Errorf("embedded: store directory %q: %w", cfg.StoreDir, err)
	}
	log = log.With().Str("component", "nats-server").Logger()

	// nats-server reports a busy port only as a log line; checking first gives the operator an
	// error that says what to do.
	if cfg.Port != RandomPort {
		addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, "", fmt.Errorf("%w: %s (is another NATS server running? connect to it with -nats-url, or choose another -%s): %v",
				ErrPortInUse, addr, FlagPort, err)
		}
		_ = l.Close()
	}

	opts := &server.Options{
		ServerName:   "registry-embedded",
		Host:         cfg.Host,
		Port:         cfg.Port,
		JetStream:    true,
		StoreDir:     storeDir,
		SyncAlways:   cfg.Sync.Always(),
		SyncInterval: cfg.Sync.Interval,
		NoSigs:       true, // the service owns signal handling
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrStart, err)
	}
	adapter := &serverLogger{log: log, fatal: make(chan string, 1)}
	lvl := log.GetLevel()
	srv.SetLogger(adapter, lvl <= zerolog.DebugLevel, lvl <= zerolog.TraceLevel)

	go srv.Start()
	for !srv.ReadyForConnections(100 * time.Millisecond) {
		select {
		case reason := <-adapter.fatal:
			shutdown(srv)
			return nil, "", fmt.Errorf("%w: %s", ErrStart, reason)
		case <-ctx.Done():
			shutdown(srv)
			return nil, "", fmt.Errorf("embedded: waiting for nats-server to start: %w", ctx.Err())
		default:
		}
	}
	if !srv.JetStreamEnabled() {
		shutdown(srv)
		return nil, "", fmt.Errorf("%w: JetStream is not enabled", ErrStart)
	}
	port := srv.Addr().(*net.TCPAddr).Port
	url := "nats://" + net.JoinHostPort(cfg.Host, strconv.Itoa(port))
	log.Info().Str("url", url).Str("store_dir", storeDir).Str("sync", cfg.Sync.String()).
		Str("version", server.VERSION).Msg("embedded NATS server with JetStream started; no NATS URL was configured")
	return &Server{srv: srv, url: url, log: log}, url, nil
}

// ClientURL returns the URL clients connect to.
func (s *Server) ClientURL() string { return s.url }

// NATSServer returns the underlying server, for in-process connections
// (nats.InProcessServer) and monitoring.
func (s *Server) NATSServer() *server.Server { return s.srv }

// Shutdown stops the server, closing client connections and flushing JetStream's files, and
// waits until it is gone or ctx is done. Drain the service's own connections first: their
// in-flight work cannot finish once the server is down.
func (s *Server) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		shutdown(s.srv)
		close(done)
	}()
	select {
	case <-done:
		s.log.Info().Str("url", s.url).Msg("embedded NATS server stopped")
		return nil
	case <-ctx.Done():
		return fmt.Errorf("embedded: waiting for nats-server to stop: %w", ctx.Err())
	}
}

func shutdown(srv *server.Server) {
	srv.Shutdown()
	srv.WaitForShutdown()
}
