package queryservice

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cim-infra/registry/internal/microsvc"
	"github.com/cim-infra/registry/internal/tracing"
	"github.com/cim-infra/registry/internal/workers"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	oteltrace "go.opentelemetry.io/otel/trace"
)

// Version is the service version announced through $SRV.INFO.
const Version = "1.0.0"

// Service is one instance of the query service: a model built from the stream, and once it has
// caught up, a micro service answering list, count and trace from it.
type Service struct {
	nc       *nats.Conn
	model    *Model
	follower *follower
	events   jetstream.Stream // the stream trace reads the events from
	opts     Options
	log      zerolog.Logger
	metrics  *metrics

	mu       sync.Mutex // guards micro and draining, and orders inflight.Add before Wait
	micro    *microsvc.Service
	draining bool
	inflight sync.WaitGroup
	busy     int
	workers  *workers.Pool
}

// New prepares an instance on nc: the model, its reader of the stream and its metrics in reg.
// Run builds the model and serves.
func New(nc *nats.Conn, opts Options, log zerolog.Logger, reg prometheus.Registerer) (*Service, error) {
	opts.fillDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.ConsumerPrefix == "" {
		opts.ConsumerPrefix = ServiceName + "-" + nuid.Next()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("queryservice: jetstream: %w", err)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("queryservice: metrics: %w", err)
	}
	log = log.With().Str("component", "query").Logger().Hook(tracing.LogHook)
	model := NewModel()
	return &Service{
		nc: nc, model: model, opts: opts, log: log, metrics: m, workers: workers.New(),
		follower: newFollower(js, model, opts, log, m),
	}, nil
}

// Model returns the instance's model.
func (s *Service) Model() *Model { return s.model }

// ErrNotServing is the readiness error of an instance whose model has caught up but whose
// endpoints are not yet registered with the server.
var ErrNotServing = errors.New("endpoints not yet registered")

// Ready is the instance's readiness check: the model has caught up (see follower.Ready) and the
// endpoints are registered with the server, so that whoever is told the instance is ready finds
// a responder.
func (s *Service) Ready(ctx context.Context) error {
	if err := s.follower.Ready(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	serving := s.micro != nil
	s.mu.Unlock()
	if !serving {
		return ErrNotServing
	}
	return nil
}

// Run builds the model from the stream, joins the queue group once the model has caught up
// with the stream's head as it stood at start-up, and follows the stream until ctx is done.
// Then it leaves the queue group, lets the queries in flight finish and returns nil.
func (s *Service) Run(ctx context.Context) error {
	if err := s.follower.start(ctx); err != nil {
		return err
	}
	events, err := s.follower.js.Stream(ctx, s.opts.Stream)
	if err != nil {
		return fmt.Errorf("queryservice: stream %s: %w", s.opts.Stream, err)
	}
	s.events = events
	followCtx, stopFollowing := context.WithCancel(ctx)
	defer stopFollowing()
	followed := make(chan error, 1)
	go func() { followed <- s.follower.run(followCtx) }()
	select {
	case <-s.follower.caughtUp():
	case <-ctx.Done():
		stopFollowing()
		return <-followed
	}
	if err := s.startMicro(); err != nil {
		stopFollowing()
		<-followed
		return err
	}
	snapshotsDone := make(chan struct{})
	go func() {
		defer close(snapshotsDone)
		s.follower.snapshotLoop(followCtx)
	}()
	defer func() { <-snapshotsDone }()
	<-ctx.Done()
	s.shutdown()
	stopFollowing()
	return <-followed
}

func (s *Service) startMicro() error {
	svc := microsvc.New(s.nc, microsvc.Config{
		Name:        api.QueryServiceName,
		Version:     Version,
		Description: "Queries over a read model of every compute resource, built from the event stream",
		QueueGroup:  api.QueryServiceQueueGroup,
		Metadata:    map[string]string{"stream": s.opts.Stream},
	})
	serves := map[string]func(context.Context, []byte) (any, error){
		api.QueryList: s.list, api.QueryCount: s.count, api.QueryTrace: s.trace,
	}
	for _, name := range api.Queries() {
		svc.AddEndpoint(name, api.QuerySubject(name), map[string]string{"kind": "query"}, s.dispatch(name, serves[name]))
	}
	// Requests may arrive as soon as the endpoints subscribe, before the flush below returns;
	// holding mu until micro is set makes them wait (dispatch takes mu), so that an instance
	// never answers while its readiness still says it is not serving.
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := svc.Start(); err != nil {
		_ = svc.Stop()
		return fmt.Errorf("queryservice: start micro service: %w", err)
	}
	// The subscriptions reach the server asynchronously: flush, so that anyone told the
	// instance is ready finds a responder.
	if err := s.nc.Flush(); err != nil {
		_ = svc.Stop()
		return fmt.Errorf("queryservice: register endpoints with the server: %w", err)
	}
	s.micro = svc
	s.log.Info().Str("micro_service", api.QueryServiceName).Str("queue_group", api.QueryServiceQueueGroup).
		Uint64("seq", s.model.Sequence()).Msg("query service serving")
	return nil
}

// dispatch answers each request on a worker of its own: a subscription delivers one request
// at a time, and a query may wait for its min_sequence. Beyond MaxInFlight requests in
// progress a request is refused at once (503 overloaded). microsvc counts each request in the
// endpoint's $SRV.STATS when its reply is sent.
func (s *Service) dispatch(name string, serve func(context.Context, []byte) (any, error)) func(*microsvc.Request) {
	return func(req *microsvc.Request) {
		data, hdr := req.Data(), req.Header()
		s.mu.Lock()
		switch {
		case s.draining:
			s.mu.Unlock()
			s.finish(context.Background(), name, req, time.Now(), nil, newError(api.CodeUnavailable, api.KindShuttingDown, "",
				"this instance is stopping and did not process the request; send it again"))
			return
		case s.busy >= s.opts.MaxInFlight:
			s.mu.Unlock()
			s.finish(context.Background(), name, req, time.Now(), nil, newError(api.CodeUnavailable, api.KindOverloaded, "",
				"this instance is processing its maximum of %d requests and did not process this one; send it again later", s.opts.MaxInFlight))
			return
		}
		s.busy++
		s.inflight.Add(1)
		s.mu.Unlock()
		s.metrics.inFlight.Inc() // from here, not from a worker's start: a request waiting for one counts
		s.workers.Run(func() {
			defer func() {
				s.mu.Lock()
				s.busy--
				s.mu.Unlock()
				s.inflight.Done()
			}()
			defer s.metrics.inFlight.Dec()
			start := time.Now()
			ctx, span := tracing.StartServer(context.Background(), api.QueryPrefix, name, hdr)
			defer span.End()
			out, err := serve(ctx, data)
			s.finish(ctx, name, req, start, out, err)
		})
	}
}

// view waits for the request's min_sequence, then returns a snapshot of the model.
func (s *Service) view(ctx context.Context, c api.Consistency) (View, error) {
	if c.WaitMillis < 0 {
		return View{}, invalidField("wait_ms", "wait_ms %d is negative", c.WaitMillis)
	}
	if c.MinSequence > 0 {
		wait := s.opts.DefaultWait
		if c.WaitMillis > 0 {
			wait = min(time.Duration(c.WaitMillis)*time.Millisecond, s.opts.MaxWait)
		}
		ctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		if applied := s.model.WaitFor(ctx, c.MinSequence); applied < c.MinSequence {
			e := newError(api.CodeUnavailable, api.KindBehind, "",
				"the model has applied stream sequence %d, not yet min_sequence %d, after waiting %s; ask again", applied, c.MinSequence, wait)
			e.Details = map[string]any{"applied": applied, "min_sequence": c.MinSequence}
			return View{}, e
		}
	}
	return s.model.View(), nil
}

func (s *Service) list(ctx context.Context, data []byte) (any, error) {
	var q api.List
	if err := decodeStrict(data, s.opts.MaxRequestBytes, &q); err != nil {
		return nil, err
	}
	p, err := planList(q)
	if err != nil {
		return nil, err
	}
	v, err := s.view(ctx, q.Consistency)
	if err != nil {
		return nil, err
	}
	return listJSON(v, p)
}

func (s *Service) count(ctx context.Context, data []byte) (any, error) {
	var q api.Count
	if err := decodeStrict(data, s.opts.MaxRequestBytes, &q); err != nil {
		return nil, err
	}
	p, err := planCount(q)
	if err != nil {
		return nil, err
	}
	v, err := s.view(ctx, q.Consistency)
	if err != nil {
		return nil, err
	}
	return count(v, p)
}

func (s *Service) trace(ctx context.Context, data []byte) (any, error) {
	var q api.Trace
	if err := decodeStrict(data, s.opts.MaxRequestBytes, &q); err != nil {
		return nil, err
	}
	if q.CorrelationID == "" {
		return nil, missingField("correlation_id", "correlation_id is required")
	}
	id, err := uuid.Parse(q.CorrelationID)
	if err != nil {
		return nil, invalidField("correlation_id", "correlation_id %q is not a UUID", shorten(q.CorrelationID))
	}
	v, err := s.view(ctx, q.Consistency)
	if err != nil {
		return nil, err
	}
	return trace(ctx, v, s.events, id)
}

// finish records the outcome, then sends the reply or the error reply: a client that got the
// reply finds its request in the metrics, and the latency histogram observes no more than
// $SRV.STATS' processing time, which runs until the reply is handed to the connection. The
// outcome goes on the request's span too.
func (s *Service) finish(ctx context.Context, name string, req *microsvc.Request, start time.Time, out any, err error) {
	outcome := "ok"
	var e *api.Error
	if err != nil {
		e = toReply(err)
		outcome = e.Kind
	}
	s.metrics.requests.WithLabelValues(name, outcome).Inc()
	s.metrics.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
	if e == nil {
		s.respond(req, out)
		return
	}
	s.respondError(req, e)
	if span := oteltrace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attribute.Int("cim.error.code", e.Code), attribute.String("cim.error.kind", e.Kind))
		if e.Code >= 500 && e.Kind != api.KindBehind {
			span.SetStatus(codes.Error, e.Message)
		}
	}
	ev := s.log.Debug()
	if e.Code >= 500 && e.Kind != api.KindBehind && e.Kind != api.KindOverloaded && e.Kind != api.KindShuttingDown {
		ev = s.log.Error()
	}
	ev.Ctx(ctx).Str("endpoint", name).Int("code", e.Code).Str("kind", e.Kind).Str("field", e.Field).Str("error", e.Message).Msg("query failed")
}

// respond sends a success reply: a page already encoded as it is (then its buffer goes back to
// the pool), anything else encoded now.
func (s *Service) respond(req *microsvc.Request, body any) {
	var data []byte
	if e, encoded := body.(encodedReply); encoded {
		data = e.bytes()
		defer e.release()
	} else {
		var err error
		if data, err = json.Marshal(body); err != nil {
			s.respondError(req, newError(api.CodeInternal, api.KindInternal, "", "encode reply: %v", err))
			return
		}
	}
	if err := req.Respond(data); err != nil {
		s.log.Warn().Err(err).Msg("send reply")
	}
}

// respondError sends an error reply as the command service does: code and message in the micro
// error headers, the api.Error as JSON body.
func (s *Service) respondError(req *microsvc.Request, e *api.Error) {
	data, err := json.Marshal(e)
	if err != nil {
		s.log.Error().Err(err).Msg("encode error reply")
		req.Drop("encode error reply: " + err.Error())
		return
	}
	if err := req.Error(e.Code, cmp.Or(e.Message, e.Kind), data); err != nil {
		s.log.Warn().Err(err).Msg("send error reply")
	}
}

// shutdown leaves the queue group (new requests go to other instances; requests already
// delivered here get 503 shutting_down) and waits for the requests in flight.
func (s *Service) shutdown() {
	s.mu.Lock()
	svc := s.micro
	s.draining = true
	s.mu.Unlock()
	if svc != nil {
		if err := svc.Stop(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			s.log.Warn().Err(err).Msg("stop micro service")
		}
		// The server learns of the unsubscriptions asynchronously: once the flush returns it
		// has, and sends no new request here; only those already on the way get 503.
		if err := s.nc.Flush(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			s.log.Warn().Err(err).Msg("flush the micro service's unsubscriptions")
		}
	}
	s.inflight.Wait()
	s.workers.Close()
	s.log.Info().Msg("query service stopped; no query in flight")
}
