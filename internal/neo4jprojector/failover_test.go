package neo4jprojector

import (
	"context"
	"errors"
	"flag"
	"sync"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/projector"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// killedMidBatch is the sink of a replica killed -9 while it applies its first batch: its NATS
// connection closes, nothing is committed, nothing acknowledged.
type killedMidBatch struct {
	projector.Sink
	nc     *nats.Conn
	killed chan time.Time
	once   sync.Once
}

func (s *killedMidBatch) Apply(context.Context, []projector.Delivery) error {
	s.once.Do(func() {
		s.nc.Close()
		s.killed <- time.Now()
	})
	return errors.New("replica is dead")
}

// firstDeliveries is a sink that records the highest delivery count of the events it was given,
// and when it was first given some.
type firstDeliveries struct {
	projector.Sink
	mu           sync.Mutex
	first        time.Time
	maxDelivered uint64
}

func (s *firstDeliveries) Apply(ctx context.Context, batch []projector.Delivery) error {
	s.mu.Lock()
	if s.first.IsZero() {
		s.first = time.Now()
	}
	for _, d := range batch {
		s.maxDelivered = max(s.maxDelivered, d.NumDelivered)
	}
	s.mu.Unlock()
	return s.Sink.Apply(ctx, batch)
}

// The fail-over with the service's own defaults (-pinned-ttl 10s, batch 256, ack wait 30 s): the
// active replica is killed in the middle of a full batch, which leaves the consumer no delivery to
// give until that batch comes back. The standby takes it over once the pin has expired, at the
// first delivery of every event: before the ack wait could have ended (the expiry would make it
// the second delivery).
func TestFailOverWithTheServiceDefaults(t *testing.T) {
	e := newEnv(t, 17, 60)
	var cfg Config
	cfg.RegisterFlags(flag.NewFlagSet("test", flag.ContinueOnError))
	rc := cfg.RunnerConfig()
	e.appendEvents(400)

	nc := natstest.Connect(t, e.srv.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	dead := &killedMidBatch{Sink: e.newSink(), nc: nc, killed: make(chan time.Time, 1)}
	e.start(js, dead, rc)
	var killedAt time.Time
	select {
	case killedAt = <-dead.killed:
	case <-e.ctx.Done():
		t.Fatal("the active replica never got a batch")
	}

	standby := &firstDeliveries{Sink: e.newSink()}
	b := e.start(e.connect(), standby, rc)
	e.waitCheckpoint(e.hist.last)
	e.appendEvents(100)
	e.waitCheckpoint(e.hist.last)
	e.requireExactGraph()
	e.requireNoDeadLetters()

	standby.mu.Lock()
	defer standby.mu.Unlock()
	if standby.maxDelivered != 1 {
		t.Errorf("the standby applied events at their delivery number %d: it waited for the ack wait (%s) to end",
			standby.maxDelivered, projectorAckWait(b))
	}
	if role := b.runner.Role(); role != projector.RoleActive {
		t.Errorf("the standby's role after the take-over = %s, want active", role)
	}
	t.Logf("take-over: first batch applied by the standby %s after the kill (pinned TTL %s, fetch wait %s, ack wait %s)",
		standby.first.Sub(killedAt).Round(100*time.Millisecond), rc.PinnedTTL, rc.FetchWait, projectorAckWait(b))
}

func projectorAckWait(r *replica) time.Duration { return r.runner.ConsumerConfig().AckWait }
