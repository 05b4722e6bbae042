package projector

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Role says whether a runner is the one of its priority group that receives the events.
type Role string

// The roles of a runner.
const (
	// RoleActive receives and applies the events: it holds the pin of its priority group, or
	// its consumer has no priority group.
	RoleActive Role = "active"
	// RoleStandby applies nothing: another replica of the group holds the pin (or none does,
	// until the next event pins one), or the runner is not consuming.
	RoleStandby Role = "standby"
)

// headerPinID carries the pin of a priority group on the messages delivered to the pinned client.
const headerPinID = "Nats-Pin-Id"

// ErrNotConsuming is returned by Ready while the runner does not consume: it is not running, its
// NATS connection is down, or its last fetch failed.
var ErrNotConsuming = errors.New("projector not consuming")

// Ready reports nil while the runner consumes (running, connected to NATS, its last fetch
// answered) and its last apply succeeded. A standby that consumes is ready: it takes over as soon
// as the pin comes to it.
func (r *Runner) Ready(context.Context) error {
	r.mu.Lock()
	running, fetchErr, applyErr := r.running, r.fetchErr, r.applyErr
	r.mu.Unlock()
	switch {
	case !running:
		return ErrNotConsuming
	case !r.js.Conn().IsConnected():
		return fmt.Errorf("%w: nats connection %s", ErrNotConsuming, r.js.Conn().Status())
	case fetchErr != nil:
		return fmt.Errorf("%w: fetch: %w", ErrNotConsuming, fetchErr)
	}
	return applyErr
}

// Role returns the runner's role now.
func (r *Runner) Role() Role {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running && (r.active || r.cfg.PriorityGroup == "") {
		return RoleActive
	}
	return RoleStandby
}

// LastApplied returns the stream sequence of the last event the read model holds: its checkpoint
// when the runner started, then the last batch the sink accepted.
func (r *Runner) LastApplied() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastSeq
}

// restore reads the sink's checkpoint, so that the last applied sequence is known before the
// first batch. A sink that cannot say (its store is down) leaves it for the first batch.
func (r *Runner) restore(ctx context.Context) {
	seq, err := r.sink.Checkpoint(ctx)
	if err != nil {
		r.log.Warn().Err(err).Msg("checkpoint not read; the last applied sequence is known after the first batch")
		return
	}
	r.mu.Lock()
	r.lastSeq = max(r.lastSeq, seq)
	seq = r.lastSeq
	r.mu.Unlock()
	if r.metrics != nil {
		r.metrics.lastSeq.Set(float64(seq))
	}
}

func (r *Runner) setRunning(v bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running = v
	r.fetchErr = nil
	if !v {
		r.active = false
	}
}

func (r *Runner) setActive(v bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.active = v
}

func (r *Runner) setFetchErr(err error) {
	if errors.Is(err, jetstream.ErrPinIDMismatch) {
		err = nil // a standby's fetch: it consumes, in its turn
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fetchErr = err
}

func (r *Runner) setApplyErr(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applyErr = err
}

func (r *Runner) setApplied(last Delivery, err error) {
	r.mu.Lock()
	r.applyErr = err
	r.lastSeq = last.Sequence
	pending := r.pending
	r.mu.Unlock()
	if r.metrics != nil {
		r.metrics.lastSeq.Set(float64(last.Sequence))
	}
	r.observeLag(pending, last.Time)
}

// up is the value of cim_projector_up: 1 while Ready passes.
func (r *Runner) up() float64 {
	if r.Ready(context.Background()) != nil {
		return 0
	}
	return 1
}
