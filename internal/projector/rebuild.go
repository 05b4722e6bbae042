package projector

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrNotActive is returned by Rebuild when another process consumes from the same durable
// consumer: a rebuild runs only while it is the single active one.
var ErrNotActive = errors.New("projector: another replica is consuming")

// Rebuild replays the whole stream into an emptied read model, then consumes as Run does. It
// first takes the single-active role: no other process may be pulling from the consumer, and,
// with a priority group, this one must hold the pin (a stopped replica's pin expires after
// PinnedTTL, which Rebuild waits for, up to twice that). Else it returns an error matching ErrNotActive and changes
// nothing. Holding the role, it starts the consumer again from the stream's first event, calls
// empty, which must empty the read model (checkpoint included), and consumes. It needs
// permission to publish to $JS.API.CONSUMER.RESET.<Stream>.<Durable>.
func (r *Runner) Rebuild(ctx context.Context, empty func(context.Context) error) error {
	return r.run(ctx, func(ctx context.Context, cons jetstream.Consumer) error {
		if err := r.takeActiveRole(ctx, cons); err != nil {
			return err
		}
		if _, err := r.js.ResetConsumerToSequence(ctx, r.cfg.Stream, r.cfg.Durable, 1); err != nil {
			return fmt.Errorf("projector: reset consumer %s to the first event: %w", r.cfg.Durable, err)
		}
		r.log.Info().Str("consumer", r.cfg.Durable).Msg("rebuild: single active replica; consumer reset to the first event")
		if err := empty(ctx); err != nil {
			return err
		}
		r.mu.Lock()
		r.lastSeq, r.rebuilding = 0, true
		r.mu.Unlock()
		return nil
	})
}

// takeActiveRole makes sure no other process pulls from cons and, with a priority group, takes
// its pin.
func (r *Runner) takeActiveRole(ctx context.Context, cons jetstream.Consumer) error {
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("projector: consumer %s: %w", r.cfg.Durable, err)
	}
	if info.NumWaiting > 0 {
		// The pull requests of a process that just stopped go with its connection: look again
		// once they would have expired.
		if !sleep(ctx, r.cfg.FetchWait+r.cfg.FetchWait/2) {
			return ctx.Err()
		}
		if info, err = cons.Info(ctx); err != nil {
			return fmt.Errorf("projector: consumer %s: %w", r.cfg.Durable, err)
		}
		if info.NumWaiting > 0 {
			return fmt.Errorf("%w: %d pull requests of other processes wait on consumer %s; stop the other replicas first",
				ErrNotActive, info.NumWaiting, r.cfg.Durable)
		}
	}
	if r.cfg.PriorityGroup == "" {
		return nil
	}
	if info.Delivered.Stream == 0 && info.NumPending == 0 {
		return nil // no event to deliver: nothing can hold a pin, nothing would be applied
	}
	if info.NumPending == 0 {
		// The server assigns a pin with a delivery: have one (an event the read model holds,
		// delivered again and skipped).
		if _, err := r.js.ResetConsumerToSequence(ctx, r.cfg.Stream, r.cfg.Durable, max(info.AckFloor.Stream, 1)); err != nil {
			return fmt.Errorf("projector: reset consumer %s: %w", r.cfg.Durable, err)
		}
	}
	// A stopped replica keeps the pin for PinnedTTL after its last pull: wait for it, with room
	// for the server's timer; a live one keeps it for good.
	mb, err := cons.Fetch(1, jetstream.FetchMaxWait(2*r.cfg.PinnedTTL), jetstream.FetchPriorityGroup(r.cfg.PriorityGroup))
	if err != nil {
		return fmt.Errorf("projector: take the pin of consumer %s: %w", r.cfg.Durable, err)
	}
	pinned := false
	for msg := range mb.Messages() {
		pinned = pinned || msg.Headers().Get(headerPinID) != ""
		_ = msg.Nak()
	}
	if !pinned {
		holder := "another replica"
		for _, g := range info.PriorityGroups {
			if g.Group == r.cfg.PriorityGroup && g.PinnedClientID != "" {
				holder = fmt.Sprintf("the replica pinned since %s", g.PinnedTS.Format("2006-01-02T15:04:05Z07:00"))
			}
		}
		if err := mb.Error(); err != nil && !errors.Is(err, jetstream.ErrPinIDMismatch) {
			return fmt.Errorf("projector: take the pin of consumer %s: %w", r.cfg.Durable, err)
		}
		return fmt.Errorf("%w: %s holds the pin of group %s on consumer %s (it kept it for %s); stop the other replicas first",
			ErrNotActive, holder, r.cfg.PriorityGroup, r.cfg.Durable, 2*r.cfg.PinnedTTL)
	}
	r.setActive(true)
	return nil
}
