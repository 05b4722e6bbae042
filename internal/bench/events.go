package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/pkg/jetstore"
)

// fillerData is an event payload of a typical size.
var fillerData = []byte(`{"field":"some value of a typical size","other":"a second value"}`)

// fillerEvent is an event of a typical size.
func fillerEvent(id string) jetstore.Event {
	return jetstore.Event{ID: id, Type: "Filled", SchemaVersion: 1, Data: fillerData,
		CorrelationID: "c-" + id, CausationID: "c-" + id, CommandID: "c-" + id}
}

// eventMsg encodes e as jetstore writes it (the same headers), so that raw JetStream does the
// same work as the store and so that the store and the services can read what raw publishes
// wrote.
func eventMsg(subject string, agg jetstore.AggregateRef, e jetstore.Event) *nats.Msg {
	h := make(nats.Header, 8)
	h.Set(jetstore.HeaderEventID, e.ID)
	h.Set(jetstore.HeaderEventType, e.Type)
	h.Set(jetstore.HeaderEventVersion, strconv.Itoa(e.SchemaVersion))
	h.Set(jetstore.HeaderAggregateType, agg.Type)
	h.Set(jetstore.HeaderAggregateID, agg.ID)
	if e.CorrelationID != "" {
		h.Set(jetstore.HeaderCorrelationID, e.CorrelationID)
	}
	if e.CausationID != "" {
		h.Set(jetstore.HeaderCausationID, e.CausationID)
	}
	if e.CommandID != "" {
		h.Set(jetstore.HeaderCommandID, e.CommandID)
	}
	return &nats.Msg{Subject: subject, Header: h, Data: e.Data}
}

// newStore creates an event stream (with the store's own stream configuration) named and
// prefixed for this run, and returns the store on it.
func newStore(ctx context.Context, e *env, js jetstream.JetStream, what string, replicas int, opts ...jetstore.Option) (*jetstore.Store, error) {
	stream, prefix := e.name(what)
	opts = append([]jetstore.Option{jetstore.WithUpcasters(resourcestore.Upcasters()...)}, opts...)
	st, err := jetstore.New(js, jetstore.Config{Stream: stream, SubjectPrefix: prefix, Replicas: replicas}, opts...)
	if err != nil {
		return nil, err
	}
	if err := st.EnsureStream(ctx); err != nil {
		return nil, err
	}
	return st, nil
}

// dropStream deletes a stream this run created (an external server keeps nothing of a run).
func dropStream(js jetstream.JetStream, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = js.DeleteStream(ctx, name)
}

// publishAsync publishes n messages made by msg with asynchronous acks, within js's pending
// window, and waits for every ack. A full window is waited out and the message sent again.
func publishAsync(ctx context.Context, js jetstream.JetStream, n int, msg func(i int) *nats.Msg) error {
	var sampled []jetstream.PubAckFuture
	var stalls int
	for i := range n {
		m := msg(i)
		for {
			f, err := js.PublishMsgAsync(m)
			if err == nil {
				if i%1024 == 0 || i == n-1 {
					sampled = append(sampled, f) // errors are rare: check a sample of the acks
				}
				break
			}
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				return fmt.Errorf("async publish %d of %d: %w", i, n, err)
			}
			if stalls++; stalls > 10_000 {
				return fmt.Errorf("async publish %d of %d: the server stays behind: %w", i, n, err)
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(5 * time.Minute):
		return fmt.Errorf("async publish of %d messages: acks missing after 5 minutes", n)
	}
	for _, f := range sampled {
		select {
		case err := <-f.Err():
			return fmt.Errorf("async publish: %w", err)
		default:
		}
	}
	return nil
}

// storeSetup is a single server, a connection to it and an event store on a stream of the run's
// own: what the single-node scenarios start from.
type storeSetup struct {
	url string
	nc  *nats.Conn
	js  jetstream.JetStream
	st  *jetstore.Store

	stop func()
}

// singleStore starts (or, with an external server, uses) one node, connects, and creates the
// stream named for what; release undoes all of it, in reverse order.
func (e *env) singleStore(ctx context.Context, what string, jsOpts ...jetstream.JetStreamOpt) (*storeSetup, error) {
	t, err := e.single()
	if err != nil {
		return nil, err
	}
	nc, err := e.connect(ctx, t.url)
	if err != nil {
		t.stop()
		return nil, err
	}
	js, err := jetstream.New(nc, jsOpts...)
	if err == nil {
		var st *jetstore.Store
		if st, err = newStore(ctx, e, js, what, t.replicas); err == nil {
			return &storeSetup{url: t.url, nc: nc, js: js, st: st, stop: t.stop}, nil
		}
	}
	nc.Close()
	t.stop()
	return nil, err
}

func (s *storeSetup) release() {
	dropStream(s.js, s.st.Config().Stream)
	s.nc.Close()
	s.stop()
}
