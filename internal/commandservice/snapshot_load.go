package commandservice

import (
	"context"
	"errors"
	"fmt"

	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
)

// load reads the aggregate from its snapshot. ok is false when there is no usable snapshot
// (the caller then reads the whole history); err is set only when the event stream failed.
//
// With current false the snapshot is returned unverified (agg.unverified): a command's append,
// conditional on the snapshot's sequence, tells whether it is current, and refresh verifies it
// (tail) otherwise. With current true the aggregate's last event is read too (one cheap
// request), and the stream from the snapshot's last event on when it moved.
func (s *snapshots) load(ctx context.Context, store *jetstore.Store, id uuid.UUID, current bool) (agg aggregate, ok bool, err error) {
	ref := resourcestore.Ref(id)
	snap, err := s.store.Get(ctx, ref)
	switch {
	case errors.Is(err, jetstore.ErrNoSnapshot):
		s.reads.WithLabelValues(SnapshotNone).Inc()
		return aggregate{}, false, nil
	case err != nil:
		if ctx.Err() != nil {
			return aggregate{}, false, ctx.Err()
		}
		s.reads.WithLabelValues(SnapshotError).Inc()
		return aggregate{}, false, nil
	case snap.SchemaVersion != snapshotSchema:
		s.reads.WithLabelValues(SnapshotIgnored).Inc()
		return aggregate{}, false, nil
	}
	agg, stream, err := unmarshalSnapshot(snap.State)
	switch {
	case err == nil && agg.lastSeq != snap.Sequence:
		err = fmt.Errorf("snapshot at sequence %d holds an aggregate at %d", snap.Sequence, agg.lastSeq)
	case err == nil && stream != s.stream:
		err = fmt.Errorf("snapshot of the stream created at %d, not of this one (created at %d): the stream was recreated", stream, s.stream)
	}
	if err != nil {
		s.reads.WithLabelValues(SnapshotIgnored).Inc()
		s.log.Warn().Err(err).Str("aggregate_id", id.String()).Msg("snapshot ignored; reading the whole history")
		return aggregate{}, false, nil
	}
	agg.snapSeq = snap.Sequence
	if !current {
		agg.unverified = true
		s.reads.WithLabelValues(SnapshotHit).Inc()
		return agg, true, nil
	}
	// The aggregate has usually not moved since: its last event is the snapshot's.
	last, found, err := store.LastEvent(ctx, ref)
	if err != nil {
		return aggregate{}, false, err
	}
	if found && last.Sequence == snap.Sequence && matches([]jetstore.RecordedEvent{last}, snap.Sequence, agg.lastEventID) {
		s.reads.WithLabelValues(SnapshotHit).Inc()
		return agg, true, nil
	}
	if found && last.Sequence > snap.Sequence {
		agg.unverified = true
		if ok, err := s.verify(ctx, store, id, &agg); err != nil {
			return aggregate{}, false, err
		} else if ok {
			s.reads.WithLabelValues(SnapshotHit).Inc()
			return agg, true, nil
		}
	}
	s.reads.WithLabelValues(SnapshotIgnored).Inc()
	s.log.Warn().Str("aggregate_id", id.String()).Uint64("sequence", snap.Sequence).
		Msg("snapshot ignored: the stream does not hold its last event at its sequence; reading the whole history")
	return aggregate{}, false, nil
}

// verify reads the stream from the unverified aggregate's snapshot's last event on: if that
// event is there (same sequence, same id), the events after it are folded into agg and ok is
// true; otherwise the snapshot is unusable and agg is left as it was.
func (s *snapshots) verify(ctx context.Context, store *jetstore.Store, id uuid.UUID, agg *aggregate) (ok bool, err error) {
	loaded, err := store.Load(ctx, resourcestore.Ref(id), jetstore.After(agg.snapSeq-1))
	if err != nil {
		return false, err
	}
	if !matches(loaded.Events, agg.snapSeq, agg.lastEventID) || agg.lastSeq != agg.snapSeq {
		return false, nil
	}
	verified := *agg
	if err := verified.apply(loaded.Events[1:]...); err != nil {
		return false, err
	}
	verified.unverified = false
	*agg = verified
	return true, nil
}

// matches reports whether events start with the event id at sequence seq.
func matches(events []jetstore.RecordedEvent, seq uint64, id uuid.UUID) bool {
	if len(events) == 0 || events[0].Sequence != seq {
		return false
	}
	e, err := resourcestore.FromStore(events[0])
	return err == nil && e.Meta().EventID == id
}
