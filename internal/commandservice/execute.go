package commandservice

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/internal/tracing"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// execute applies one command to its aggregate and returns the reply. It holds the
// aggregate's lock throughout, so commands on one aggregate are serialised in this instance;
// other instances are kept out by the store's expected-sequence check.
func (s *Service) execute(ctx context.Context, req commandRequest) (api.CommandReply, error) {
	id := req.cmd.AggregateID()
	commandID := req.cmd.Metadata().CommandID
	e := s.cache.acquire(id)
	defer s.cache.release(e)

	// fresh is true once the state was read from the store during this request: only then is a
	// refusal, or a command that changes nothing, reported, since a stale state could wrongly
	// refuse a retry of a command that another instance has already applied.
	fresh := false
	if e.loaded {
		s.metrics.cacheHits.Inc()
		_, span := startLoad(ctx, "cache_hit")
		endLoad(span, e, nil)
	} else {
		s.metrics.cacheMisses.Inc()
		lctx, span := startLoad(ctx, "cache_miss")
		var err error
		// A snapshot is taken as it is: the append below is conditional on its sequence.
		fresh, err = s.load(lctx, e, false)
		endLoad(span, e, err)
		if err != nil {
			return api.CommandReply{}, err
		}
	}
	checkedResults := false
	conflicts := 0
	reread := false // the history was read again after jetstore.ErrEventIDReused
	for {
		if r, ok := e.agg.result(commandID); ok {
			return s.answerAgain(ctx, e, req, r)
		}
		_, span := tracing.Start(ctx, spanDecide)
		events, err := cr.Decide(e.agg.state, req.cmd)
		if span.IsRecording() {
			span.SetAttributes(attribute.Int(attrEvents, len(events)))
			if err != nil {
				// A refusal is the domain's answer, not the span's failure.
				span.SetAttributes(attribute.String(attrErrorKind, toReply(err).Kind))
			}
		}
		span.End()
		if (err != nil || len(events) == 0) && !fresh {
			if err := s.refresh(ctx, e); err != nil {
				return api.CommandReply{}, err
			}
			fresh = true
			continue
		}
		if err != nil {
			return s.refused(ctx, e, req, err)
		}
		if len(events) == 0 {
			return s.unchanged(ctx, e, req)
		}
		if req.ownID && !req.newID && !checkedResults {
			// The command may have been sent before and written nothing (refused, or changed
			// nothing): then that outcome is the reply and nothing is written. A command id its
			// sender made up for this request cannot have been.
			checkedResults = true
			if r, ok, err := s.results.get(ctx, id, commandID); err != nil {
				return api.CommandReply{}, err
			} else if ok {
				return s.answerAgain(ctx, e, req, r)
			}
		}
		if !req.deadline.IsZero() && !s.now().Before(req.deadline) {
			return api.CommandReply{}, deadlineExceeded(req.deadline)
		}
		stored, err := resourcestore.ToStore(events)
		if err != nil {
			return api.CommandReply{}, err
		}
		actx, span := s.startAppend(ctx, e, e.agg.lastSeq, conflicts+1)
		// The events carry the append's trace context: the read models' spans join its trace.
		var headers map[string]string
		if req.digest != "" {
			headers = map[string]string{HeaderCommandDigest: req.digest}
		}
		if headers = tracing.Inject(actx, headers); headers != nil {
			for i := range stored {
				stored[i].Headers = headers
			}
		}
		res, err := s.store.Append(actx, resourcestore.Ref(id), e.agg.lastSeq, stored, s.keyOptions(e.agg.state, events)...)
		if span.IsRecording() {
			traceAppend(span, res, err)
		}
		span.End()
		var taken *jetstore.KeyTakenError
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
				return s.answerAgain(ctx, e, req, r)
			}
			return api.CommandReply{}, fmt.Errorf("append of command %s to %s reported a duplicate at sequence %d, but its events are not in the aggregate's history", commandID, id, res.FirstSequence)
		case errors.As(err, &taken):
			// Another resource holds a key the events claim: not a conflict on this resource, so
			// not retried. Nor recorded: once the holder lets it go, a re-send may take it.
			return api.CommandReply{}, keyTaken(taken)
		case errors.Is(err, jetstore.ErrEventIDReused) && !reread:
			// The command's event ids are derived from its command id and resource, so they are
			// stored only if this command id has written to this resource: an earlier attempt
			// decided on another state (another number of events). Read the history, whose
			// command ids then answer it, once.
			reread = true
			if err := s.refresh(ctx, e); err != nil {
				return api.CommandReply{}, err
			}
			fresh = true
		case errors.Is(err, jetstore.ErrConcurrency):
			s.metrics.conflicts.Inc()
			if conflicts >= s.opts.MaxRetries {
				return api.CommandReply{}, err
			}
			s.metrics.retries.Inc()
			if server := trace.SpanFromContext(ctx); server.IsRecording() {
				server.AddEvent("retry", trace.WithAttributes(attribute.Int(attrAttempt, conflicts+2)))
			}
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

// keyOptions returns the claims and releases of the keys that events, decided against state,
// imply (cr.KeyChanges), for the append of the events; none when the store keeps no keys.
func (s *Service) keyOptions(state cr.State, events []cr.Event) []jetstore.AppendOption {
	if s.store.Config().KeyPrefix == "" {
		return nil
	}
	var opts []jetstore.AppendOption
	for _, k := range cr.KeyChanges(state, events) {
		if k.Release {
			opts = append(opts, jetstore.Release(string(k.Space), k.Value))
		} else {
			opts = append(opts, jetstore.Claim(string(k.Space), k.Value))
		}
	}
	return opts
}

// answerAgain answers a command id whose outcome is known (events in the history, or a record
// in the results bucket) with that outcome, if the request is the one that had it; a command id
// re-used for another request gets command_id_reused. Nothing is written either way.
func (s *Service) answerAgain(ctx context.Context, e *entry, req commandRequest, r commandResult) (api.CommandReply, error) {
	digest := r.digest
	if digest == "" && len(r.events) > 0 && req.digest != "" {
		// Written: the digest is on the command's events.
		loaded, err := s.store.Load(ctx, resourcestore.Ref(e.id), jetstore.After(r.events[0].Sequence-1), jetstore.MaxEvents(1))
		if err != nil {
			return api.CommandReply{}, err
		}
		if len(loaded.Events) == 1 {
			digest = loaded.Events[0].Headers[HeaderCommandDigest]
		}
	}
	if digest != "" && req.digest != "" && digest != req.digest {
		return api.CommandReply{}, commandIDReused(req.cmd)
	}
	if r.refusal != nil {
		refusal := *r.refusal
		return api.CommandReply{}, &refusal
	}
	return r.reply(e.id, true), nil
}

// refused answers a command the domain refused, after recording the refusal for its re-sends if
// it carries its own command id. If an earlier attempt recorded an outcome, that is the answer.
func (s *Service) refused(ctx context.Context, e *entry, req commandRequest, cause error) (api.CommandReply, error) {
	reply := toReply(cause)
	if !req.ownID || reply.Code >= 500 {
		return api.CommandReply{}, cause
	}
	r := commandResult{version: e.agg.lastSeq, digest: req.digest, refusal: reply}
	recorded, outcome, err := s.results.create(ctx, e.id, req.cmd.Metadata().CommandID, r)
	if err != nil {
		return api.CommandReply{}, err
	}
	if outcome == RecordExisting {
		return s.answerAgain(ctx, e, req, recorded)
	}
	return api.CommandReply{}, reply
}

// unchanged answers a command that changes nothing, after recording its result if it carries
// its own command id, so that a re-send gets the same reply even if the state has changed by
// then. If an earlier attempt recorded an outcome, that is the answer.
func (s *Service) unchanged(ctx context.Context, e *entry, req commandRequest) (api.CommandReply, error) {
	r := commandResult{version: e.agg.lastSeq, digest: req.digest}
	if !req.ownID {
		return r.reply(e.id, false), nil
	}
	recorded, outcome, err := s.results.create(ctx, e.id, req.cmd.Metadata().CommandID, r)
	if err != nil {
		return api.CommandReply{}, err
	}
	if outcome == RecordExisting {
		return s.answerAgain(ctx, e, req, recorded)
	}
	return r.reply(e.id, false), nil
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
func (s *Service) refresh(ctx context.Context, e *entry) (err error) {
	ctx, span := startLoad(ctx, "refresh")
	defer func() { endLoad(span, e, err) }()
	if e.agg.unverified {
		ok, err := s.snaps.verify(ctx, s.store, e.id, &e.agg)
		if err != nil {
			return err
		}
		if !ok {
			s.snaps.reads.WithLabelValues(SnapshotIgnored).Inc()
			s.log.Warn().Ctx(ctx).Str("aggregate_id", e.id.String()).Uint64("sequence", e.agg.snapSeq).
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
