package commandservice

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cim-infra/registry/internal/microsvc"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/internal/tracing"
	"github.com/cim-infra/registry/internal/workers"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Version is the service version announced through $SRV.INFO.
const Version = "1.0.0"

// Service is one running instance of the command service on a NATS connection: a micro
// service with an endpoint per command and query, in the shared queue group.
type Service struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	store   *jetstore.Store
	results *results
	snaps   *snapshots // nil with Options.NoSnapshots
	cache   *cache
	opts    Options
	log     zerolog.Logger
	metrics *metrics
	micro   *microsvc.Service
	now     func() time.Time

	mu       sync.Mutex // guards draining, and orders inflight.Add before inflight.Wait
	draining bool
	inflight sync.WaitGroup
	busy     atomic.Int64 // requests being processed, at most opts.MaxInFlight
	workers  *workers.Pool
}

// testHooks let tests act at points a real failure could strike.
type testHooks struct {
	// afterAppend runs after a command's events were appended, before the reply.
	afterAppend func(commandID uuid.UUID)
	// received runs on the worker as a command request starts being processed, before its
	// deadline is checked: blocking in it is an instance paused with the request in hand.
	received func(command string)
	// now replaces the service's clock.
	now func() time.Time
}

// New ensures the event stream and the results bucket exist, then starts the micro service
// on nc. The caller owns nc: stop the service with Shutdown, then drain nc.
func New(ctx context.Context, nc *nats.Conn, sc jetstore.Config, opts Options, log zerolog.Logger, reg prometheus.Registerer) (*Service, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("commandservice: jetstream: %w", err)
	}
	store, err := jetstore.New(js, sc, jetstore.WithUpcasters(resourcestore.Upcasters()...))
	if err != nil {
		return nil, fmt.Errorf("commandservice: event store: %w", err)
	}
	if err := store.EnsureStream(ctx); err != nil {
		return nil, fmt.Errorf("commandservice: %w", err)
	}
	s := &Service{
		nc: nc, js: js, store: store, opts: opts, now: time.Now,
		cache: newCache(opts.CacheSize), workers: workers.New(),
		log: log.With().Str("component", "commands").Logger().Hook(tracing.LogHook),
	}
	if s.metrics, err = newMetrics(reg, s.cache.len); err != nil {
		return nil, fmt.Errorf("commandservice: metrics: %w", err)
	}
	if opts.hooks != nil && opts.hooks.now != nil {
		s.now = opts.hooks.now
	}
	if s.results, err = openResults(ctx, js, opts.ResultsBucket, store.Config().Replicas, opts.ResultsTTL, opts.ResultsMaxBytes, s.metrics.resultRecords); err != nil {
		return nil, err
	}
	if !opts.NoSnapshots {
		if err := s.openSnapshots(ctx, reg); err != nil {
			return nil, err
		}
	}
	if err := s.startMicro(); err != nil {
		return nil, err
	}
	cfg := store.Config()
	s.log.Info().Str("micro_service", api.ServiceName).Str("queue_group", api.QueueGroup).Str("stream", cfg.Stream).
		Int("replicas", cfg.Replicas).Str("key_prefix", cfg.KeyPrefix).Int("cache_size", opts.CacheSize).Int("max_retries", opts.MaxRetries).
		Str("results_bucket", opts.ResultsBucket).Bool("snapshots", !opts.NoSnapshots).Str("snapshot_bucket", opts.SnapshotBucket).
		Msg("command service started")
	return s, nil
}

func (s *Service) startMicro() error {
	d := microsvc.New(s.nc, microsvc.Config{
		Name: api.ServiceName, Version: Version, QueueGroup: api.QueueGroup,
		Description: "Commands and queries of the compute resource registry (event-sourced on JetStream)",
		Metadata:    map[string]string{"stream": s.store.Config().Stream},
	})
	for _, name := range api.Commands() {
		d.AddEndpoint(name, api.CommandSubject(name), map[string]string{"kind": "command"}, s.dispatch(name, s.serveCommand))
	}
	for name, serve := range map[string]func(context.Context, string, *microsvc.Request, []byte){api.QueryGet: s.serveGet, api.QueryHistory: s.serveHistory} {
		d.AddEndpoint(name, api.QuerySubject(name), map[string]string{"kind": "query"},
			s.dispatch(name, func(name string, r *microsvc.Request, data []byte, hdr nats.Header) {
				ctx, span := tracing.StartServer(context.Background(), api.QueryPrefix, name, hdr)
				defer span.End()
				serve(ctx, name, r, data)
			}))
	}
	if err := d.Start(); err != nil {
		_ = d.Stop()
		return fmt.Errorf("commandservice: start micro service: %w", err)
	}
	s.micro = d
	// The endpoints' subscriptions reach the server asynchronously: flush so that a request sent
	// by anyone once New has returned finds a responder (a client that was told the instance is
	// up must not get "no responders").
	if err := s.nc.Flush(); err != nil {
		_ = d.Stop()
		return fmt.Errorf("commandservice: register endpoints with the server: %w", err)
	}
	return nil
}

// dispatch hands each request to a worker goroutine: a subscription delivers its requests one
// at a time, and a request spends most of its time waiting for the store.
// Beyond opts.MaxInFlight requests in progress, a request is refused at once (503 overloaded)
// rather than queued: its client learns at once that it may retry, here or on another
// instance, and the instance's memory and the store's load stay bounded.
func (s *Service) dispatch(name string, serve func(name string, r *microsvc.Request, data []byte, hdr nats.Header)) func(*microsvc.Request) {
	outcomes := s.metrics.commands
	if name == api.QueryGet || name == api.QueryHistory {
		outcomes = s.metrics.queries
	}
	overloaded := outcomes.WithLabelValues(name, OutcomeOverload)
	return func(x *microsvc.Request) {
		data, hdr := x.Data(), x.Header()
		s.mu.Lock()
		if s.draining {
			s.mu.Unlock()
			s.respondError(x, newError(api.CodeUnavailable, api.KindShuttingDown, "",
				"this instance is stopping and did not process the request; send it again (with the same command_id)"))
			return
		}
		if s.busy.Add(1) > int64(s.opts.MaxInFlight) {
			s.busy.Add(-1)
			s.mu.Unlock()
			overloaded.Inc()
			s.respondError(x, newError(api.CodeUnavailable, api.KindOverloaded, "",
				"this instance is processing its maximum of %d requests and did not process this one; send it again (with the same command_id), later or to another instance", s.opts.MaxInFlight))
			return
		}
		s.inflight.Add(1)
		s.mu.Unlock()
		s.metrics.inFlight.Inc() // from here, not from a worker's start: a request waiting for one counts
		s.workers.Run(func() {
			defer s.inflight.Done()
			defer s.busy.Add(-1)
			defer s.metrics.inFlight.Dec()
			serve(name, x, data, hdr)
		})
	}
}

// serveCommand decodes, executes and answers one command, in a server span that continues the
// trace of the request's headers.
func (s *Service) serveCommand(name string, x *microsvc.Request, data []byte, hdr nats.Header) {
	start := time.Now()
	ctx, span := tracing.StartServer(context.Background(), api.CommandPrefix, name, hdr)
	defer span.End()
	if s.opts.hooks != nil && s.opts.hooks.received != nil {
		s.opts.hooks.received(name)
	}
	req, err := s.decodeRequest(name, data, hdr)
	cmd := req.cmd
	var out api.CommandReply
	if err == nil {
		// The caller's deadline does not bound ctx: an append cut short by it would leave the
		// outcome unknown, where execute's check before the append knows nothing was written.
		ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
		out, err = s.execute(ctx, req)
		cancel()
	}
	if span.IsRecording() {
		traceCommand(span, name, cmd, out, err)
	}
	elapsed := time.Since(start)
	series := s.metrics.command(name)
	series.observe(elapsed)

	var ev *zerolog.Event
	if err != nil {
		e := toReply(err)
		series.count(outcome(e.Code, e.Kind))
		s.respondError(x, e)
		ev = s.levelFor(e.Code).Int("code", e.Code).Str("kind", e.Kind).Str("error", e.Message)
		if e.Field != "" {
			ev = ev.Str("field", e.Field)
		}
	} else {
		result := OutcomeOK
		if out.Duplicate {
			result = OutcomeDuplicate
		}
		series.count(result)
		s.respondCommand(x, out)
		ev = s.log.Debug().Uint64("version", out.Version).Int("events", len(out.Events)).Bool("duplicate", out.Duplicate)
	}
	if ev == nil {
		return
	}
	if cmd != nil {
		m := cmd.Metadata()
		ev = ev.Str("command_id", m.CommandID.String()).Str("correlation_id", correlation(m.CorrelationID, m.CommandID)).
			Str("aggregate_id", cmd.AggregateID().String())
	}
	ev.Str("command", name).Dur("elapsed", elapsed).Ctx(ctx).Msg("command")
}

// decodeRequest reads a command request: its deadline header first (a request whose caller has
// already given up is not decoded), its body, then the timestamp's distance from the clock.
func (s *Service) decodeRequest(name string, data []byte, hdr nats.Header) (commandRequest, error) {
	var req commandRequest
	now := s.now()
	if v := hdr.Get(api.HeaderDeadline); v != "" {
		deadline, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return req, invalidField(api.HeaderDeadline, "header %s %q is not an RFC 3339 time such as \"2026-01-02T15:04:05.5Z\"", api.HeaderDeadline, shorten(v))
		}
		if !now.Before(deadline) {
			return req, deadlineExceeded(deadline)
		}
		req.deadline = deadline
	}
	cmd, ownID, err := decodeRequest(name, data, s.opts.MaxRequestBytes, now)
	if err != nil {
		return req, err
	}
	if ts := cmd.Metadata().Timestamp; ts.Sub(now).Abs() > s.opts.MaxClockSkew {
		e := invalidField("timestamp", "timestamp %s is %s from the service's clock (%s); at most %s is accepted: send the command without a timestamp to have it stamped with the service's clock",
			ts.Format(time.RFC3339Nano), ts.Sub(now).Round(time.Second), now.UTC().Format(time.RFC3339), s.opts.MaxClockSkew)
		e.Details = map[string]any{"max_clock_skew": s.opts.MaxClockSkew.String()}
		return req, e
	}
	req.cmd, req.ownID = cmd, ownID
	req.newID = ownID && hdr.Get(api.HeaderNewCommandID) == "true"
	if ownID {
		req.digest = requestDigest(cmd)
	}
	return req, nil
}

func correlation(correlationID, commandID uuid.UUID) string {
	if correlationID == uuid.Nil {
		return commandID.String()
	}
	return correlationID.String()
}

// levelFor logs client errors at debug level, conflicts at info and failures as errors.
func (s *Service) levelFor(code int) *zerolog.Event {
	switch {
	case code >= 500:
		return s.log.Error()
	case code == api.CodeConflict:
		return s.log.Info()
	default:
		return s.log.Debug()
	}
}

// respond sends a success reply.
func (s *Service) respond(x *microsvc.Request, body any) {
	data, err := json.Marshal(body)
	if err != nil {
		s.log.Error().Err(err).Msg("encode reply")
		x.Drop("encode reply: " + err.Error())
		return
	}
	s.sent(x.Respond(data))
}

// respondCommand sends a command's success reply, encoded by api.CommandReply's own
// MarshalJSON (json.Marshal would call it too, then scan its output again).
func (s *Service) respondCommand(x *microsvc.Request, out api.CommandReply) {
	data, err := out.MarshalJSON()
	if err != nil {
		s.log.Error().Err(err).Msg("encode reply")
		x.Drop("encode reply: " + err.Error())
		return
	}
	s.sent(x.Respond(data))
}

// respondError sends an error reply the way micro.Request.Error does: the code and message in
// the micro error headers, the api.Error as JSON body.
func (s *Service) respondError(x *microsvc.Request, e *api.Error) {
	data, err := json.Marshal(e)
	if err != nil {
		s.log.Error().Err(err).Msg("encode error reply")
		data = nil
	}
	s.sent(x.Error(e.Code, cmp.Or(e.Message, e.Kind), data))
}

// sent logs a reply that could not be sent (microsvc counted it as an error).
func (s *Service) sent(err error) {
	if err != nil {
		s.log.Warn().Err(err).Msg("send reply")
	}
}

// Shutdown stops taking requests (the micro service unsubscribes, so the queue group sends
// new ones to other instances; requests already delivered here get a 503 "shutting_down"
// reply) and waits for the requests in flight to finish and reply, or for ctx. It leaves the
// connection open: drain it afterwards.
func (s *Service) Shutdown(ctx context.Context) error {
	stopErr := s.micro.Stop()
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.workers.Close()
	case <-ctx.Done():
		return fmt.Errorf("commandservice: shutdown: requests still in flight: %w", ctx.Err())
	}
	s.flushSnapshots(ctx)
	if stopErr != nil && !errors.Is(stopErr, nats.ErrConnectionClosed) {
		return fmt.Errorf("commandservice: stop micro service: %w", stopErr)
	}
	s.log.Info().Msg("command service stopped; no request in flight")
	return nil
}

// JetStream returns the JetStream context the service uses (for readiness checks).
func (s *Service) JetStream() jetstream.JetStream { return s.js }

// Store returns the service's event store.
func (s *Service) Store() *jetstore.Store { return s.store }
