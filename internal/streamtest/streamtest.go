// Package streamtest is the event stream the read models' tests write to: an embedded NATS
// server with the stream, commands' events appended as the command service would append them
// (decided against the fold of what was written, with the expected version), and raw messages
// as a misbehaving writer would publish them.
package streamtest

import (
	"context"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream is an embedded server with the event stream.
type Stream struct {
	// Ctx bounds the test's work on the stream (New's timeout).
	Ctx   context.Context
	URL   string
	NC    *nats.Conn
	JS    jetstream.JetStream
	Store *jetstore.Store
}

// New starts a server with the event stream (default settings), for a test of at most timeout.
func New(t *testing.T, timeout time.Duration) *Stream {
	t.Helper()
	srv := natstest.RunServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	nc := natstest.Connect(t, srv.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	store, err := jetstore.New(js, jetstore.Config{}, jetstore.WithUpcasters(resourcestore.Upcasters()...))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	return &Stream{Ctx: ctx, URL: srv.ClientURL(), NC: nc, JS: js, Store: store}
}

// Do decides c against states[id], the fold of what was written to its resource, and appends
// the events expecting versions[id], the resource's last stream sequence; then it updates both.
// It returns the events (none when c changes nothing) and the sequence of the last one.
func (s *Stream) Do(t *testing.T, states map[uuid.UUID]cr.State, versions map[uuid.UUID]uint64, c cr.Command) ([]cr.Event, uint64) {
	t.Helper()
	id := c.AggregateID()
	evs, err := cr.Decide(states[id], c)
	if err != nil {
		t.Fatalf("decide %s: %v", c.CommandName(), err)
	}
	if len(evs) == 0 {
		return nil, 0
	}
	stored, err := resourcestore.ToStore(evs)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Store.Append(s.Ctx, resourcestore.Ref(id), versions[id], stored)
	if err != nil {
		t.Fatalf("append %s: %v", c.CommandName(), err)
	}
	versions[id] = res.LastSequence
	states[id] = cr.Fold(states[id], evs...)
	return evs, res.LastSequence
}

// PublishRaw writes a message straight to the stream, as a misbehaving writer would, and
// returns its sequence.
func (s *Stream) PublishRaw(t *testing.T, subject string, h nats.Header, data []byte) uint64 {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Header = h
	m.Data = data
	ack, err := s.JS.PublishMsg(s.Ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}
