// Package microsvc makes a service a NATS micro service on the wire, with statistics that count
// each request when its reply is sent. It answers $SRV.PING, INFO and STATS (for all services,
// for the service's name, and for its instance id) with nats.go micro's own types, and serves
// the endpoints as queue subscriptions, so that `nats micro ls|info|stats` see it as any other.
//
// It stands in for micro.AddService because micro accounts for a request around its handler's
// call: it counts an error only if the handler replied through req.Error before returning, and
// sums the handler's duration as the processing time. micro calls an endpoint's handler for one
// request at a time, so a service whose requests wait (for a store, for a read model to reach a
// sequence) hands each one to a goroutine and returns at once; micro then counts no error and a
// processing time of microseconds per request, whatever the request took. Here a request is
// accounted for when its reply is sent (Request.Respond, Request.Error): an error reply counts
// in num_errors with last_error "<code>:<description>", and processing_time runs from the
// request's delivery to its reply.
package microsvc

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"
)

// Config describes the service as $SRV.INFO shows it.
type Config struct {
	Name        string
	Version     string
	Description string
	// QueueGroup is the queue group of every endpoint.
	QueueGroup string
	Metadata   map[string]string
}

// Service is one instance of a micro service on a connection. Declare its endpoints with
// AddEndpoint, then Start it; Stop ends it.
type Service struct {
	nc        *nats.Conn
	identity  micro.ServiceIdentity
	cfg       Config
	endpoints []*endpoint // fixed once started

	mu      sync.Mutex // guards started, verbs and stopped
	started time.Time
	verbs   []*nats.Subscription
	stopped bool
}

// endpoint is one endpoint of the service and its statistics.
type endpoint struct {
	name     string
	subject  string
	metadata map[string]string
	handler  nats.MsgHandler
	sub      *nats.Subscription

	mu         sync.Mutex // guards the statistics
	requests   int
	errors     int
	lastError  string
	processing time.Duration
}

// New returns the service described by cfg on nc, with a new instance id.
func New(nc *nats.Conn, cfg Config) *Service {
	return &Service{
		nc:       nc,
		identity: micro.ServiceIdentity{Name: cfg.Name, ID: nuid.Next(), Version: cfg.Version, Metadata: cfg.Metadata},
		cfg:      cfg,
	}
}

// ID returns the instance id, the last token of its $SRV subjects.
func (s *Service) ID() string { return s.identity.ID }

// AddEndpoint declares an endpoint on subject; Start subscribes to it. handle gets every request
// on the subscription's goroutine, and may reply later, from any goroutine: the request is
// counted when it is answered.
func (s *Service) AddEndpoint(name, subject string, metadata map[string]string, handle func(*Request)) {
	e := &endpoint{name: name, subject: subject, metadata: metadata}
	e.handler = func(m *nats.Msg) { handle(&Request{msg: m, ep: e, nc: s.nc, received: time.Now()}) }
	s.endpoints = append(s.endpoints, e)
}

// Handler returns the function the named endpoint's subscription calls with each message (nil
// for an unknown name): a message given to it is handled as one the subscription delivered.
func (s *Service) Handler(name string) nats.MsgHandler {
	for _, e := range s.endpoints {
		if e.name == name {
			return e.handler
		}
	}
	return nil
}

// Start subscribes to the endpoints and to the discovery subjects. The subscriptions reach the
// server asynchronously: flush the connection before telling anyone the service is up.
func (s *Service) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started = time.Now().UTC()
	for _, e := range s.endpoints {
		sub, err := s.nc.QueueSubscribe(e.subject, s.cfg.QueueGroup, e.handler)
		if err != nil {
			return fmt.Errorf("microsvc: endpoint %s: %w", e.name, err)
		}
		e.sub = sub
	}
	for verb, answer := range map[micro.Verb]func() any{
		micro.PingVerb:  func() any { return micro.Ping{ServiceIdentity: s.identity, Type: micro.PingResponseType} },
		micro.InfoVerb:  func() any { return s.info() },
		micro.StatsVerb: func() any { return s.stats() },
	} {
		handler := func(m *nats.Msg) {
			data, err := json.Marshal(answer())
			if err == nil && m.Reply != "" {
				_ = s.nc.Publish(m.Reply, data)
			}
		}
		for _, scope := range [][2]string{{"", ""}, {s.identity.Name, ""}, {s.identity.Name, s.identity.ID}} {
			subject, err := micro.ControlSubject(verb, scope[0], scope[1])
			if err != nil {
				return fmt.Errorf("microsvc: %w", err)
			}
			sub, err := s.nc.Subscribe(subject, handler)
			if err != nil {
				return fmt.Errorf("microsvc: subscribe %s: %w", subject, err)
			}
			s.verbs = append(s.verbs, sub)
		}
	}
	return nil
}

// Stop drains the endpoints' subscriptions (requests already delivered are still handled),
// then the discovery subjects'. Later calls do nothing.
func (s *Service) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	var errs []error
	for _, e := range s.endpoints {
		if e.sub != nil {
			errs = append(errs, drainSub(e.sub))
		}
	}
	for _, sub := range s.verbs {
		errs = append(errs, drainSub(sub))
	}
	return errors.Join(errs...)
}

func drainSub(sub *nats.Subscription) error {
	if err := sub.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
		return fmt.Errorf("microsvc: drain subscription %s: %w", sub.Subject, err)
	}
	return nil
}

// Stopped reports whether Stop was called.
func (s *Service) Stopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

func (s *Service) info() micro.Info {
	endpoints := make([]micro.EndpointInfo, len(s.endpoints))
	for i, e := range s.endpoints {
		endpoints[i] = micro.EndpointInfo{Name: e.name, Subject: e.subject, QueueGroup: s.cfg.QueueGroup, Metadata: e.metadata}
	}
	return micro.Info{ServiceIdentity: s.identity, Type: micro.InfoResponseType, Description: s.cfg.Description, Endpoints: endpoints}
}

func (s *Service) stats() micro.Stats {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	stats := micro.Stats{ServiceIdentity: s.identity, Type: micro.StatsResponseType, Started: started,
		Endpoints: make([]*micro.EndpointStats, len(s.endpoints))}
	for i, e := range s.endpoints {
		e.mu.Lock()
		st := &micro.EndpointStats{Name: e.name, Subject: e.subject, QueueGroup: s.cfg.QueueGroup,
			NumRequests: e.requests, NumErrors: e.errors, LastError: e.lastError, ProcessingTime: e.processing}
		if e.requests > 0 {
			st.AverageProcessingTime = e.processing / time.Duration(e.requests)
		}
		e.mu.Unlock()
		stats.Endpoints[i] = st
	}
	return stats
}

// Request is one request in progress on an endpoint. Answer it once, with Respond, Error or
// Drop, from any goroutine.
type Request struct {
	msg      *nats.Msg
	ep       *endpoint
	nc       *nats.Conn
	received time.Time
}

// Data returns the request's body.
func (r *Request) Data() []byte { return r.msg.Data }

// Header returns the request's headers.
func (r *Request) Header() nats.Header { return r.msg.Header }

// Respond counts the request, then sends data as its reply (nothing to a request without a
// reply subject), so that a client that got the reply and then asks $SRV.STATS sees it counted.
func (r *Request) Respond(data []byte) error {
	return r.send(&nats.Msg{Subject: r.msg.Reply, Data: data}, "")
}

// Error counts the request as an error (last_error "<code>:<description>"), then sends the
// error reply the way micro.Request.Error does: code and description in the micro error
// headers (line breaks in the description become spaces), data as the body.
func (r *Request) Error(code int, description string, data []byte) error {
	description = strings.Map(func(c rune) rune {
		if c == '\r' || c == '\n' {
			return ' '
		}
		return c
	}, description)
	codeText := strconv.Itoa(code)
	return r.send(&nats.Msg{Subject: r.msg.Reply, Data: data, Header: nats.Header{
		micro.ErrorHeader:     []string{description},
		micro.ErrorCodeHeader: []string{codeText},
	}}, codeText+":"+description)
}

// Drop counts the request as an error with reason as last_error, and sends no reply.
func (r *Request) Drop(reason string) { r.done(reason) }

func (r *Request) send(msg *nats.Msg, errText string) error {
	r.done(errText)
	if msg.Subject == "" {
		return nil
	}
	if err := r.nc.PublishMsg(msg); err != nil {
		r.ep.failed("send reply: " + err.Error())
		return fmt.Errorf("microsvc: send reply: %w", err)
	}
	return nil
}

// done accounts for the request (errText empty for a success).
func (r *Request) done(errText string) {
	elapsed := time.Since(r.received)
	e := r.ep
	e.mu.Lock()
	defer e.mu.Unlock()
	e.requests++
	e.processing += elapsed
	if errText != "" {
		e.errors++
		e.lastError = errText
	}
}

// failed counts an error of a request already accounted for (its reply could not be sent).
func (e *endpoint) failed(errText string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.errors++
	e.lastError = errText
}
