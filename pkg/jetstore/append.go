package jetstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// AppendResult tells where the events of an Append were stored.
type AppendResult struct {
	// FirstSequence and LastSequence are the stream sequences of the first and last event.
	// LastSequence is the expected sequence of the aggregate's next append.
	FirstSequence, LastSequence uint64
	// Duplicate is true when the events had already been written, as one write of this
	// aggregate with the same event ids in the same order, by an earlier Append (a retry whose
	// reply was lost); the sequences are the original ones and nothing new was written.
	Duplicate bool
}

// Server error codes that mean "the aggregate is not at the expected sequence": 10071 from a
// single server (with the actual sequence in the text), 10164 from a replicated stream or while
// another write to the subject is in flight.
const (
	codeWrongLastSequence         = jetstream.JSErrCodeStreamWrongLastSequence
	codeWrongLastSequenceConstant = jetstream.JSErrCodeStreamWrongLastSequenceConstant
)

// Append appends events to the aggregate if its last sequence is expected (0: the aggregate must
// not exist yet). The server enforces the expectation, so of several concurrent appends with the
// same expected sequence exactly one succeeds; the others fail with a *ConcurrencyError
// (errors.Is(err, ErrConcurrency)).
//
// Several events are written as one atomic batch: all or none. More than
// Config.MaxEventsPerAppend events fail with ErrTooManyEvents and no events with ErrNoEvents,
// before anything is sent. Every event needs a unique ID, which becomes its Nats-Msg-Id.
//
// Retrying an Append whose reply was lost is safe. When the same write is already stored (the
// same event ids, in the same order, as one write of this aggregate), Append returns Duplicate:
// true with the original sequences and writes nothing: retried with the same expected sequence,
// or with the aggregate's current one after a reload, on single servers and replicated streams
// alike. (Retried with an expected sequence that is behind the aggregate, with other writes
// between it and the stored write, it may first fail with a *ConcurrencyError; after a reload
// it is recognised.)
//
// Event ids stored within the stream's duplicates window, but not as this same write (on
// another aggregate, or as part of another write), fail with an *EventIDReusedError
// (errors.Is(err, ErrEventIDReused)) and nothing is written: a retry cannot succeed, the events
// need new ids.
//
// Options add key claims and releases (Claim, Release) to the same atomic batch: a key claimed
// by another aggregate fails the append with a *KeyTakenError (errors.Is(err, ErrKeyTaken))
// when the aggregate is at the expected sequence, with its *ConcurrencyError when it is not
// (the events were decided on a state it no longer has), and nothing is written. A retried
// append with keys is recognised by its events as above.
func (s *Store) Append(ctx context.Context, agg AggregateRef, expected uint64, events []Event, opts ...AppendOption) (AppendResult, error) {
	subject, err := s.Subject(agg)
	if err != nil {
		return AppendResult{}, err
	}
	if len(events) == 0 {
		return AppendResult{}, fmt.Errorf("%w: aggregate %s", ErrNoEvents, agg)
	}
	if len(events) > s.cfg.MaxEventsPerAppend {
		return AppendResult{}, fmt.Errorf("%w: %d events for %s, at most %d", ErrTooManyEvents, len(events), agg, s.cfg.MaxEventsPerAppend)
	}
	var ids map[string]struct{} // most appends hold one event: they need no set of ids
	if len(events) > 1 {
		ids = make(map[string]struct{}, len(events))
	}
	for i := range events {
		if err := events[i].validate(); err != nil {
			return AppendResult{}, err
		}
		if ids == nil {
			continue
		}
		if _, dup := ids[events[i].ID]; dup {
			return AppendResult{}, fmt.Errorf("%w: event id %q appears twice in one append", ErrInvalidEvent, events[i].ID)
		}
		ids[events[i].ID] = struct{}{}
	}
	var o appendOptions
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return AppendResult{}, err
		}
	}
	switch {
	case len(o.keys) > 0 && s.cfg.KeyPrefix == "":
		return AppendResult{}, ErrKeysDisabled
	case len(events)+len(o.keys) > MaxBatch:
		return AppendResult{}, fmt.Errorf("%w: %d events and %d keys for %s, at most %d messages", ErrTooManyEvents, len(events), len(o.keys), agg, MaxBatch)
	}
	if err := ctxErr(ctx); err != nil {
		return AppendResult{}, err
	}

	w := &write{agg: agg, subject: subject, events: events}
	// Sent again, at once and at most maxKeyAttempts times, only when a key changed between its
	// read and the send but is still claimable. The loop is the store's own: pkg/jetstore is public
	// and imports no internal package (internal/retry), and whether to send again is known only
	// after reading the keys again.
	for attempt := 1; ; attempt++ {
		var keys []keyMessage
		if len(o.keys) > 0 {
			if keys, err = s.planKeys(ctx, w, expected, o.keys); err != nil {
				return AppendResult{}, err
			}
		}
		var res AppendResult
		if len(events) == 1 && len(keys) == 0 {
			res, err = s.publishOne(ctx, w, expected)
		} else {
			res, err = s.publishBatch(ctx, w, expected, keys)
		}
		if err == nil {
			return res, nil
		}
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) {
			return AppendResult{}, fmt.Errorf("jetstore: append %d events to %s: %w", len(events), agg, classify(err))
		}
		switch apiErr.ErrorCode {
		case codeWrongLastSequence, codeWrongLastSequenceConstant:
			res, rerr := s.resolveConflict(ctx, w, expected, err)
			var cerr *ConcurrencyError
			if len(keys) == 0 || !errors.As(rerr, &cerr) || cerr.Actual != expected {
				return res, rerr
			}
			// The aggregate was where expected: which expectation failed?
			retry, kerr := s.keyConflict(ctx, w, expected, keys, cerr)
			if kerr != nil {
				return AppendResult{}, kerr
			}
			if !retry || attempt == maxKeyAttempts {
				return AppendResult{}, cerr
			}
		case jetstreamext.JSErrCodeBatchPublishDuplicateMsgID:
			return s.resolveDuplicateID(ctx, w, err)
		default:
			return AppendResult{}, fmt.Errorf("jetstore: append %d events to %s: %w", len(events), agg, classify(err))
		}
	}
}

func (s *Store) publishOne(ctx context.Context, w *write, expected uint64) (AppendResult, error) {
	m := w.events[0].message(w.subject, w.agg)
	m.Header[jetstream.ExpectedLastSubjSeqHeader] = []string{strconv.FormatUint(expected, 10)}
	ack, err := s.js.PublishMsg(ctx, m)
	if err != nil {
		return AppendResult{}, err
	}
	if ack.Duplicate {
		// The id is stored: by this write (a retry), or by another.
		return s.duplicateAck(ctx, w, ack.Sequence)
	}
	return w.result(ack.Sequence, false), nil
}

// publishBatch sends the events, then the key messages, as one atomic batch.
func (s *Store) publishBatch(ctx context.Context, w *write, expected uint64, keys []keyMessage) (AppendResult, error) {
	msgs := make([]*nats.Msg, 0, len(w.events)+len(keys))
	for i := range w.events {
		msgs = append(msgs, w.events[i].message(w.subject, w.agg))
	}
	// The aggregate's expectation goes on its first message only; the server checks it at commit
	// against the stream as it was before the batch. Each key message carries its key's.
	msgs[0].Header.Set(jetstream.ExpectedLastSubjSeqHeader, fmt.Sprint(expected))
	for i := range keys {
		msgs = append(msgs, keys[i].message(w, i))
	}
	// The first message is acknowledged (the library's default) so that a batch the stream refuses
	// fails at once rather than at commit; that wait is bounded by ctx's deadline.
	fc := jetstreamext.BatchFlowControl{AckFirst: true, AckTimeout: s.js.Options().DefaultTimeout}
	if d, ok := ctx.Deadline(); ok {
		fc.AckTimeout = max(time.Until(d), time.Millisecond)
	}
	ack, err := jetstreamext.PublishMsgBatch(ctx, s.js, msgs, fc)
	if err != nil {
		return AppendResult{}, err
	}
	// An atomic batch is stored contiguously; the ack names the commit (last) message.
	return w.result(ack.Sequence-uint64(len(msgs))+1, false), nil
}
