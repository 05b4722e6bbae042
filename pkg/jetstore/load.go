package jetstore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Loaded is the result of a Load.
type Loaded struct {
	// Events are the aggregate's events in stream order, upcast to their latest known version.
	Events []RecordedEvent
	// LastSequence is the sequence the loaded state stands for: that of the last event returned,
	// or, when no event was returned, the After sequence (0 without After). Without UpTo options it
	// is the expected sequence of the aggregate's next Append.
	LastSequence uint64
	// More is true when MaxEvents cut the load short: at least one more event follows
	// LastSequence within the other bounds.
	More bool
}

// Load reads the aggregate's events in order with batch direct get, page by page, so that
// aggregates of any length load without a consumer. Options narrow the read: After (tail of a
// cached state), UpToSequence and UpToTime (the aggregate as it was), MaxEvents (a page). An aggregate without events
// loads as an empty Loaded, not an error.
//
// Direct gets may be answered by any replica, and a replica may lag the leader by a few writes. On
// a replicated stream Load therefore first asks the stream leader for the aggregate's last
// sequence and reads until the replica has it, so that a load sees every append acknowledged
// before it began (one more round trip; WithStaleReads trades this guarantee for latency).
func (s *Store) Load(ctx context.Context, agg AggregateRef, opts ...LoadOption) (Loaded, error) {
	subject, err := s.Subject(agg)
	if err != nil {
		return Loaded{}, err
	}
	var o loadOptions
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return Loaded{}, err
		}
	}
	target, err := s.leaderLast(ctx, subject)
	if err != nil {
		return Loaded{}, fmt.Errorf("jetstore: load %s: %w", agg, err)
	}
	loaded := Loaded{LastSequence: o.after}
	for e, err := range s.read(ctx, subject, o.after+1, &o, target) {
		if err != nil {
			return Loaded{}, fmt.Errorf("jetstore: load %s: %w", agg, err)
		}
		if o.maxEvents != 0 && len(loaded.Events) == o.maxEvents {
			loaded.More = true
			break
		}
		loaded.Events = append(loaded.Events, e)
		loaded.LastSequence = e.Sequence
	}
	return loaded, nil
}

// read yields the events on subject (which may be a wildcard) from stream sequence from on, upcast,
// within o's upper bounds: messages, decoded.
func (s *Store) read(ctx context.Context, subject string, from uint64, o *loadOptions, target uint64) iter.Seq2[RecordedEvent, error] {
	return func(yield func(RecordedEvent, error) bool) {
		for m, err := range s.messages(ctx, subject, from, o, target) {
			if err != nil {
				yield(RecordedEvent{}, err)
				return
			}
			e, err := s.decode(m)
			if !yield(e, err) || err != nil {
				return
			}
		}
	}
}

// messages yields the stored messages on subject (which may be a wildcard) from stream sequence
// from on, within o's upper bounds, paging with batch direct gets until the stream holds no more.
// With MaxEvents, no page asks for more than the one message beyond the limit that tells
// whether more follow.
//
// target is the last sequence on subject according to the stream leader (0: unknown, or a
// single server whose direct gets are always current). A replica that answers without reaching
// it is behind the leader: messages waits for it to catch up rather than return a stale result.
func (s *Store) messages(ctx context.Context, subject string, from uint64, o *loadOptions, target uint64) iter.Seq2[*jetstream.RawStreamMsg, error] {
	return func(yield func(*jetstream.RawStreamMsg, error) bool) {
		if from == 0 {
			from = 1
		}
		var lag replicaWait
		yielded := 0
		for {
			if err := ctxErr(ctx); err != nil {
				yield(nil, err)
				return
			}
			if o.upToSeq != 0 && from > o.upToSeq || target != 0 && from > target {
				return
			}
			batch := s.pageSize
			if o.maxEvents != 0 {
				batch = max(min(batch, o.maxEvents+1-yielded), 1)
			}
			var got int
			pending := uint64(0)
			noMore := false
			for m, err := range s.directBatch(ctx, subject, from, batch) {
				if errors.Is(err, errNoMessages) {
					noMore = true
					break
				}
				if err != nil {
					yield(nil, classify(err))
					return
				}
				if m.Sequence < from {
					yield(nil, fmt.Errorf("%w: direct get returned sequence %d, asked from %d", ErrCorruptEvent, m.Sequence, from))
					return
				}
				got++
				from = m.Sequence + 1
				if pending, err = strconv.ParseUint(serverHeader(m.Header, numPendingHeader), 10, 64); err != nil {
					yield(nil, fmt.Errorf("%w: message %d: bad Nats-Num-Pending", ErrCorruptEvent, m.Sequence))
					return
				}
				if o.prefix != "" && !strings.HasPrefix(m.Subject, o.prefix) {
					continue // another subject of a stream shared with others
				}
				if !o.includes(m.Sequence, m.Time) {
					return
				}
				if !yield(m, nil) {
					return
				}
				yielded++
			}
			switch {
			case got == 0 && !noMore:
				// directBatch ends a page silently when its deadline passes.
				if err := ctxErr(ctx); err != nil {
					yield(nil, err)
				} else {
					yield(nil, classify(fmt.Errorf("direct get on stream %s: %w", s.cfg.Stream, nats.ErrTimeout)))
				}
				return
			case pending > 0 && !noMore:
				continue
			case target == 0 || from > target:
				return
			}
			if err := lag.wait(ctx, s.js.Options().DefaultTimeout); err != nil {
				yield(nil, fmt.Errorf("direct get on stream %s: replica still behind sequence %d: %w", s.cfg.Stream, target, err))
				return
			}
		}
	}
}

// replicaWait paces the re-reads of a replica that is behind the leader: 1 ms, doubling up to
// 32 ms, for at most the context's deadline or, without one, limit.
type replicaWait struct {
	attempt  int
	deadline time.Time
}

func (w *replicaWait) wait(ctx context.Context, limit time.Duration) error {
	if w.deadline.IsZero() {
		w.deadline = time.Now().Add(limit)
	}
	if _, ok := ctx.Deadline(); !ok && time.Now().After(w.deadline) {
		return classify(nats.ErrTimeout)
	}
	d := time.Millisecond << min(w.attempt, 5)
	w.attempt++
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctxErr(ctx)
	case <-t.C:
		return nil
	}
}

// LastEvent returns the aggregate's last event, ok false when it has none, with one request (on
// a replicated stream through the leader, so that a write already acknowledged is seen, as Load
// sees it). It tells cheaply whether a state folded up to some sequence, a snapshot's or a
// cache's, is current: Load After that sequence also answers, but the server's count of the
// messages left, which a batch read reports, can cost a scan of a message block.
func (s *Store) LastEvent(ctx context.Context, agg AggregateRef) (RecordedEvent, bool, error) {
	subject, err := s.Subject(agg)
	if err != nil {
		return RecordedEvent{}, false, err
	}
	var m *jetstream.RawStreamMsg
	if s.cfg.Replicas == 1 || s.staleReads {
		m, err = s.directLast(ctx, subject)
	} else {
		m, err = s.leaderGet(ctx, msgGetRequest{LastFor: subject})
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return RecordedEvent{}, false, nil
	}
	if err != nil {
		return RecordedEvent{}, false, fmt.Errorf("jetstore: last event of %s: %w", agg, classify(err))
	}
	e, err := s.decode(m)
	if err != nil {
		return RecordedEvent{}, false, err
	}
	return e, true, nil
}

// leaderLast returns the last sequence on subject according to the stream leader, 0 when the
// subject is empty or when the stream has one replica (its direct gets are always current) or
// stale reads were chosen.
func (s *Store) leaderLast(ctx context.Context, subject string) (uint64, error) {
	if s.cfg.Replicas == 1 || s.staleReads {
		return 0, nil
	}
	m, err := s.leaderGet(ctx, msgGetRequest{LastFor: subject})
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, classify(err)
	}
	return m.Sequence, nil
}

// decode turns a stored message into an upcast RecordedEvent.
func (s *Store) decode(m *jetstream.RawStreamMsg) (RecordedEvent, error) {
	e, err := decodeEvent(m)
	if err != nil {
		return RecordedEvent{}, err
	}
	if err := s.upcasters.Upcast(&e); err != nil {
		return RecordedEvent{}, err
	}
	return e, nil
}
