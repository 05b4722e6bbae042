package commandservice

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"
)

// discovery makes an instance a NATS micro service on the wire: it answers $SRV.PING, INFO and
// STATS (for all services, for the service's name, and for its instance id) with micro's own
// types, and serves the endpoints as queue subscriptions.
//
// It stands in for micro.AddService because micro accounts for a request around its handler's
// call: it counts an error only if the handler replied through req.Error before returning, and
// sums the handler's duration as the processing time. micro calls an endpoint's handler for one
// request at a time, so this service hands each request to a worker and returns at once (see
// dispatch); micro then counted no error and a processing time of a few microseconds per
// request, whatever the request took. Here every request is accounted for when its reply is
// sent: an error reply counts in num_errors (with last_error), and processing_time runs from the
// request's delivery to its reply, queueing on the aggregate's lock and store round trips
// included, the time the cim_command_service_*_duration_seconds histograms observe.
type discovery struct {
	nc          *nats.Conn
	identity    micro.ServiceIdentity
	description string
	queueGroup  string
	endpoints   []*endpoint // fixed once started

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

// exchange is one request in progress on an endpoint: where to reply, and since when it waits.
// It is accounted for (done) just before its reply is sent.
type exchange struct {
	ep       *endpoint
	reply    string
	received time.Time
}

// done accounts for the request once its reply is sent (errText empty) or its error reply
// (errText is the error's description).
func (x *exchange) done(errText string) {
	elapsed := time.Since(x.received)
	e := x.ep
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

func newDiscovery(nc *nats.Conn, name, version, description, queueGroup string, metadata map[string]string) *discovery {
	return &discovery{
		nc:          nc,
		identity:    micro.ServiceIdentity{Name: name, ID: nuid.Next(), Version: version, Metadata: metadata},
		description: description,
		queueGroup:  queueGroup,
	}
}

// addEndpoint declares an endpoint; start subscribes to it. handle gets every request with its
// exchange, and must see to it that the exchange is done once the reply is sent.
func (d *discovery) addEndpoint(name, subject string, metadata map[string]string, handle func(*exchange, *nats.Msg)) {
	e := &endpoint{name: name, subject: subject, metadata: metadata}
	e.handler = func(m *nats.Msg) { handle(&exchange{ep: e, reply: m.Reply, received: time.Now()}, m) }
	d.endpoints = append(d.endpoints, e)
}

// start subscribes to the endpoints and to the discovery subjects.
func (d *discovery) start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.started = time.Now().UTC()
	for _, e := range d.endpoints {
		sub, err := d.nc.QueueSubscribe(e.subject, d.queueGroup, e.handler)
		if err != nil {
			return fmt.Errorf("endpoint %s: %w", e.name, err)
		}
		e.sub = sub
	}
	for verb, answer := range map[micro.Verb]func() any{
		micro.PingVerb:  func() any { return micro.Ping{ServiceIdentity: d.identity, Type: micro.PingResponseType} },
		micro.InfoVerb:  func() any { return d.info() },
		micro.StatsVerb: func() any { return d.stats() },
	} {
		handler := func(m *nats.Msg) {
			data, err := json.Marshal(answer())
			if err == nil && m.Reply != "" {
				_ = d.nc.Publish(m.Reply, data)
			}
		}
		for _, scope := range [][2]string{{"", ""}, {d.identity.Name, ""}, {d.identity.Name, d.identity.ID}} {
			subject, err := micro.ControlSubject(verb, scope[0], scope[1])
			if err != nil {
				return err
			}
			sub, err := d.nc.Subscribe(subject, handler)
			if err != nil {
				return fmt.Errorf("subscribe %s: %w", subject, err)
			}
			d.verbs = append(d.verbs, sub)
		}
	}
	return nil
}

// stop drains the endpoints' subscriptions (requests already delivered are still handled),
// then the discovery subjects'. Later calls do nothing.
func (d *discovery) stop() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return nil
	}
	d.stopped = true
	var errs []error
	for _, e := range d.endpoints {
		if e.sub != nil {
			errs = append(errs, drainSub(e.sub))
		}
	}
	for _, sub := range d.verbs {
		errs = append(errs, drainSub(sub))
	}
	return errors.Join(errs...)
}

func drainSub(sub *nats.Subscription) error {
	if err := sub.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
		return fmt.Errorf("drain subscription %s: %w", sub.Subject, err)
	}
	return nil
}

// isStopped reports whether stop was called.
func (d *discovery) isStopped() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopped
}

func (d *discovery) info() micro.Info {
	endpoints := make([]micro.EndpointInfo, len(d.endpoints))
	for i, e := range d.endpoints {
		endpoints[i] = micro.EndpointInfo{Name: e.name, Subject: e.subject, QueueGroup: d.queueGroup, Metadata: e.metadata}
	}
	return micro.Info{ServiceIdentity: d.identity, Type: micro.InfoResponseType, Description: d.description, Endpoints: endpoints}
}

func (d *discovery) stats() micro.Stats {
	d.mu.Lock()
	started := d.started
	d.mu.Unlock()
	stats := micro.Stats{ServiceIdentity: d.identity, Type: micro.StatsResponseType, Started: started,
		Endpoints: make([]*micro.EndpointStats, len(d.endpoints))}
	for i, e := range d.endpoints {
		e.mu.Lock()
		s := &micro.EndpointStats{Name: e.name, Subject: e.subject, QueueGroup: d.queueGroup,
			NumRequests: e.requests, NumErrors: e.errors, LastError: e.lastError, ProcessingTime: e.processing}
		if e.requests > 0 {
			s.AverageProcessingTime = e.processing / time.Duration(e.requests)
		}
		e.mu.Unlock()
		stats.Endpoints[i] = s
	}
	return stats
}
