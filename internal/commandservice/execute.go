package commandservice

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
)

// execute applies one command to its aggregate and returns the reply. It holds the
// aggregate's lock throughout, so commands on one aggregate are serialised in this instance;
// other instances are kept out by the store's expected-sequence check.
func (s *Service) execute(ctx context.Context, cmd cr.Command) (api.CommandReply, error) {
	id := cmd.AggregateID()
	commandID := cmd.Metadata().CommandID
	e := s.cache.acquire(id)
	defer s.cache.release(e)

	// fresh is true once the state was read from the store during this request: only then is a
	// refusal, or a command that changes nothing, reported, since a stale state could wrongly
	// refuse a retry of a command that another instance has already applied.
	fresh := false
	if e.loaded {
		s.metrics.cacheHits.Inc()
	} else {
		s.metrics.cacheMisses.Inc()
		var err error
		// A snapshot is taken as it is: the append below is conditional on its sequence.
		if fresh, err = s.load(ctx, e, false); err != nil {
			return api.CommandReply{}, err
		}
	}
	checkedResults := false
	conflicts := 0
	for {
		if r, ok := e.agg.result(commandID); ok {
			return r.reply(id, true), nil
		}
		events, err := cr.Decide(e.agg.state, cmd)
		if (err != nil || len(events) == 0) && !fresh {
			if err := s.refresh(ctx, e); err != nil {
				return api.CommandReply{}, err
			}
			fresh = true
			continue
		}
		if err != nil {
			return api.CommandReply{}, err
		}
		if len(events) == 0 {
			return s.unchanged(ctx, e, commandID)
		}
		if !checkedResults && mayHaveChangedNothing(&e.agg, cmd) {
			// The command might have changed nothing when it was first sent (see the package
			// documentation): then its recorded result is the reply and nothing is written.
			checkedResults = true
			if r, ok, err := s.results.get(ctx, id, commandID); err != nil {
				return api.CommandReply{}, err
			} else if ok {
				e.agg.noteUnchanged(commandID, r)
				return r.reply(id, true), nil
			}
		}
		stored, err := resourcestore.ToStore(events)
		if err != nil {
			return api.CommandReply{}, err
		}
		res, err := s.store.Append(ctx, resourcestore.Ref(id), e.agg.lastSeq, stored)
		switch {
		case err == nil && !res.Duplicate:
			if s.opts.hooks != nil && s.opts.hooks.afterAppend != nil {
				s.opts.hooks.afterAppend(commandID)
			}
			// The append was conditional on lastSeq: the state was current.
			e.agg.unverified = false
			for i, ev := range events {
				e.agg.record(ev, res.FirstSequence+uint64(i))
			}
			r, _ := e.agg.result(commandID)
			return r.reply(id, false), nil
		case err == nil:
			// An earlier attempt of this command was written (its reply was lost): read it back,
			// with whatever follows it, and answer from it.
			if err := s.refresh(ctx, e); err != nil {
				return api.CommandReply{}, err
			}
			fresh = true
			if r, ok := e.agg.result(commandID); ok {
				return r.reply(id, true), nil
			}
			return api.CommandReply{}, fmt.Errorf("append of command %s to %s reported a duplicate at sequence %d, but its events are not in the aggregate's history", commandID, id, res.FirstSequence)
		case errors.Is(err, jetstore.ErrConcurrency):
			s.metrics.conflicts.Inc()
			if conflicts >= s.opts.MaxRetries {
				return api.CommandReply{}, err
			}
			s.metrics.retries.Inc()
			if err := pause(ctx, conflicts); err != nil {
				return api.CommandReply{}, err
			}
			conflicts++
			if err := s.refresh(ctx, e); err != nil {
				return api.CommandReply{}, err
			}
			fresh = true
		default:
			return api.CommandReply{}, err
		}
	}
}

// unchanged answers a command that changes nothing, after recording its result so that a retry
// gets the same reply even if the state has changed by then.
func (s *Service) unchanged(ctx context.Context, e *entry, commandID uuid.UUID) (api.CommandReply, error) {
	r := commandResult{version: e.agg.lastSeq}
	recorded, created, err := s.results.create(ctx, e.id, commandID, r)
	if err != nil {
		return api.CommandReply{}, err
	}
	e.agg.noteUnchanged(commandID, recorded)
	return recorded.reply(e.id, !created), nil
}

// mayHaveChangedNothing reports whether the command could have been decided with no events
// against some earlier state of the aggregate, up to the cached one. Only then can a result of
// it be recorded in the results bucket, and need looking up. Register and the policy commands
// always write or are refused; the others change nothing only when the resource already holds
// the value they set, and a value the resource never held cannot have been held when the
// command was first sent (the append that follows is conditional on the cached sequence, so an
// earlier state the cache does not cover makes the append fail and this question be asked
// again on the refreshed state).
func mayHaveChangedNothing(a *aggregate, cmd cr.Command) bool {
	switch c := cmd.(type) {
	case cr.RegisterResource, cr.AddPolicy, cr.RemovePolicy:
		return false
	case cr.AssignOrganization:
		return a.held(heldOrganization, c.OrganizationID.String())
	case cr.AssignLocation:
		return a.held(heldLocation, c.LocationID.String())
	case cr.AssignOwner:
		return a.held(heldOwner, c.OwnerID.String())
	case cr.AssignAccountConcept:
		return a.held(heldConcept, c.ConceptID.String())
	case cr.SetHardwareDetails:
		for _, f := range []struct {
			field string
			value *string
		}{{heldManufacturer, c.Manufacturer}, {heldModel, c.Model}, {heldSerial, c.SerialNumber}} {
			if f.value != nil && !a.held(f.field, *f.value) {
				return false
			}
		}
		return true
	case cr.AssignAssetTag:
		return a.held(heldAssetTag, c.AssetTag)
	case cr.UpdateMetadata:
		return a.held(heldMetadata, c.Key+"\x00"+c.Value)
	case cr.ChangeStatus:
		return a.held(heldStatus, c.To.String())
	}
	return true // ClearAccountConcept: the resource had no account concept when registered
}

// load replaces the entry's aggregate with its snapshot (see snapshots.load for current) or,
// without a usable snapshot, with its whole history from the store. fresh is false when the
// state came from a snapshot not checked against the stream.
func (s *Service) load(ctx context.Context, e *entry, current bool) (fresh bool, err error) {
	if s.snaps != nil {
		agg, ok, err := s.snaps.load(ctx, s.store, e.id, current)
		if err != nil {
			return false, err
		}
		if ok {
			e.agg, e.loaded = agg, true
			return !agg.unverified, nil
		}
	}
	return true, s.loadHistory(ctx, e)
}

// loadHistory replaces the entry's aggregate with its whole history from the store.
func (s *Service) loadHistory(ctx context.Context, e *entry) error {
	e.loaded = false
	loaded, err := s.store.Load(ctx, resourcestore.Ref(e.id))
	if err != nil {
		return err
	}
	var agg aggregate
	if err := agg.apply(loaded.Events...); err != nil {
		return err
	}
	e.agg, e.loaded = agg, true
	return nil
}

// refresh folds the events appended since the entry's state into it. A state from a snapshot
// not yet checked is checked first: the stream must hold the snapshot's last event at its
// sequence, or the whole history is read instead.
func (s *Service) refresh(ctx context.Context, e *entry) error {
	if e.agg.unverified {
		ok, err := s.snaps.verify(ctx, s.store, e.id, &e.agg)
		if err != nil {
			return err
		}
		if !ok {
			s.snaps.reads.WithLabelValues(SnapshotIgnored).Inc()
			s.log.Warn().Str("aggregate_id", e.id.String()).Uint64("sequence", e.agg.snapSeq).
				Msg("snapshot ignored: the stream does not hold its last event at its sequence; reading the whole history")
			return s.loadHistory(ctx, e)
		}
		return nil
	}
	loaded, err := s.store.Load(ctx, resourcestore.Ref(e.id), jetstore.After(e.agg.lastSeq))
	if err != nil {
		return err
	}
	return e.agg.apply(loaded.Events...)
}

// pause waits a random time before retry attempt+1, growing with attempt, so that instances
// that conflicted do not collide again in lockstep.
func pause(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 6)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// noteUnchanged remembers the result of a command that changed nothing.
func (a *aggregate) noteUnchanged(commandID uuid.UUID, r commandResult) {
	if a.unchanged == nil {
		a.unchanged = make(map[uuid.UUID]commandResult)
	}
	a.unchanged[commandID] = r
}
