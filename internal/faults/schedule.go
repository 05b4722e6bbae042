package faults

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Kind names a fault.
type Kind string

// The faults a run injects.
const (
	// StreamLeaderDown shuts the event stream's leader down and restarts it on its own store.
	StreamLeaderDown Kind = "stream-leader-down"
	// StreamFollowerDown shuts a follower of the event stream down and restarts it.
	StreamFollowerDown Kind = "stream-follower-down"
	// CommandInstanceKilled kills a command service instance right after it sent an append,
	// before the store's ack and its reply, and starts a new instance in its place.
	CommandInstanceKilled Kind = "command-instance-killed"
	// CommandInstanceKilledClaiming kills a command service instance right after it sent the
	// key claims or releases of an append (the atomic batch's last messages, with its commit),
	// before the store's ack and its reply, and starts a new instance in its place.
	CommandInstanceKilledClaiming Kind = "command-instance-killed-claiming"
	// MetricsProjectorKilled kills the metrics projector (no final snapshot) and restarts it.
	MetricsProjectorKilled Kind = "metrics-projector-killed"
	// Neo4jProjectorKilled kills the active Neo4j projector replica and restarts it.
	Neo4jProjectorKilled Kind = "neo4j-projector-killed"
	// MetricsProjectorPaused freezes the metrics projector's network past its ack wait.
	MetricsProjectorPaused Kind = "metrics-projector-paused"
	// Neo4jProjectorPaused freezes the active Neo4j replica (NATS and Bolt) past its ack wait
	// and pinned TTL, so that the other replica takes over and the frozen one resumes late.
	Neo4jProjectorPaused Kind = "neo4j-projector-paused"
)

// AllKinds lists every fault, in a fixed order.
func AllKinds() []Kind {
	return []Kind{StreamLeaderDown, StreamFollowerDown, CommandInstanceKilled, CommandInstanceKilledClaiming,
		MetricsProjectorKilled, Neo4jProjectorKilled, MetricsProjectorPaused, Neo4jProjectorPaused}
}

// Fault is one scheduled fault.
type Fault struct {
	// At is when the fault starts, from the start of the load.
	At   time.Duration
	Kind Kind
	// Down is how long the faulty part stays down or frozen (beyond any minimum the fault
	// itself needs, such as an ack wait).
	Down time.Duration
	// Pick chooses among candidates (an instance, a replica) deterministically.
	Pick int
}

func (f Fault) String() string {
	return fmt.Sprintf("%s at %s (down %s, pick %d)", f.Kind, f.At.Round(time.Millisecond), f.Down.Round(time.Millisecond), f.Pick)
}

// Schedule places every kind once, in an order and at times drawn from seed, over the first
// 80% of a run of length d (the rest lets the last fault recover under load).
func Schedule(seed uint64, d time.Duration, kinds []Kind) []Fault {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	order := append([]Kind(nil), kinds...)
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	slot := d * 8 / 10 / time.Duration(len(order)+1)
	out := make([]Fault, len(order))
	for i, k := range order {
		jitter := time.Duration(rng.Int64N(int64(slot)/2+1)) - slot/4
		out[i] = Fault{
			At:   slot*time.Duration(i+1) + jitter,
			Kind: k,
			Down: 300*time.Millisecond + time.Duration(rng.Int64N(int64(1500*time.Millisecond))),
			Pick: rng.IntN(1 << 16),
		}
	}
	return out
}

// FormatSchedule renders a schedule one fault per line.
func FormatSchedule(fs []Fault) string {
	lines := make([]string, len(fs))
	for i, f := range fs {
		lines[i] = "  " + f.String()
	}
	return strings.Join(lines, "\n")
}
