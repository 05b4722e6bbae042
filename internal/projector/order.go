package projector

import (
	"cmp"
	"context"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// inStreamOrder sorts batch by stream sequence and reports whether it may be applied now: that
// is, whether every event before it is in the read model or in the batch. JetStream redelivers a
// message whose ack did not come (a process died holding it, or its ack wait ran out) among
// newer messages, or after them: applying those first would skip the older ones at the sink's
// checkpoint.
//
// When the consumer has deliveries outstanding besides the batch, the batch may still be applied
// if it has no gap and the sink's checkpoint is right below it: the outstanding ones are then
// either older and already in the read model (a process that died after its commit and before its
// ack, or a replay that went ahead of the consumer) or newer, to be applied after it. Otherwise, with ReclaimHeld, the consumer is reset to its ack floor so
// that the outstanding ones come again at once; without it, the batch is handed back (nak) and
// fetched again until they come with it, at most after their ack wait.
func (r *Runner) inStreamOrder(ctx context.Context, cons jetstream.Consumer, batch []Delivery) bool {
	slices.SortFunc(batch, func(a, b Delivery) int { return cmp.Compare(a.Sequence, b.Sequence) })
	info, err := cons.Info(ctx)
	if err != nil {
		r.log.Warn().Err(err).Msg("consumer info failed; batch handed back")
		return false
	}
	if info.NumAckPending <= len(batch) {
		return true
	}
	first := batch[0].Sequence
	checkpoint, err := r.sink.Checkpoint(ctx)
	if err == nil && checkpoint+1 >= first && contiguous(batch) {
		return true
	}
	ev := r.log.Info().Int("batch", len(batch)).Int("ack_pending", info.NumAckPending).Uint64("first_seq", first).
		Uint64("ack_floor", info.AckFloor.Stream).Uint64("checkpoint", checkpoint)
	if !r.cfg.ReclaimHeld {
		ev.Msg("older deliveries outstanding; batch handed back to keep stream order")
		sleep(ctx, r.cfg.FetchWait)
		return false
	}
	if _, err := r.js.ResetConsumer(ctx, r.cfg.Stream, r.cfg.Durable); err != nil {
		ev.Msg("older deliveries outstanding; batch handed back to keep stream order")
		r.log.Warn().Err(err).Msg("consumer not reset to its ack floor; the outstanding deliveries come back after the ack wait")
		sleep(ctx, r.cfg.FetchWait)
		return false
	}
	ev.Msg("older deliveries outstanding; consumer reset to its ack floor to have them again now")
	return false
}

// reclaimOrphans is the standby's side of a take-over while no event arrives: deliveries held by
// a process that stopped, with no pin left in the group (it expired PinnedTTL after that process's
// last pull), are nobody's; the consumer is reset to its ack floor so that they are delivered
// again at once (and pin a replica) rather than after AckWait. With a pin held, the active
// replica is applying them, and nothing is done.
func (r *Runner) reclaimOrphans(ctx context.Context, cons jetstream.Consumer) {
	if !r.cfg.ReclaimHeld || r.cfg.PriorityGroup == "" || r.Role() == RoleActive {
		return
	}
	info, err := cons.Info(ctx)
	if err != nil || info.NumAckPending == 0 {
		return
	}
	for _, g := range info.PriorityGroups {
		if g.Group == r.cfg.PriorityGroup && g.PinnedClientID != "" {
			return
		}
	}
	if _, err := r.js.ResetConsumer(ctx, r.cfg.Stream, r.cfg.Durable); err != nil {
		r.log.Warn().Err(err).Int("ack_pending", info.NumAckPending).
			Msg("deliveries of a stopped replica not reclaimed; they come back after the ack wait")
		return
	}
	r.log.Info().Int("ack_pending", info.NumAckPending).Uint64("ack_floor", info.AckFloor.Stream).
		Msg("deliveries of a stopped replica, with no pin left in the group: consumer reset to its ack floor")
}

// contiguous reports whether the sorted batch holds consecutive stream sequences.
func contiguous(batch []Delivery) bool {
	for i := 1; i < len(batch); i++ {
		if batch[i].Sequence != batch[i-1].Sequence+1 {
			return false
		}
	}
	return true
}
