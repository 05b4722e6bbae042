package jetstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// Whether a write that the server de-duplicated or refused is this same write, stored earlier:
// the same messages (subject and id), in the same order, as one write. A stored write is
// contiguous in the stream: one message, or one atomic batch, whose messages carry the batch
// headers the server keeps (Nats-Batch-Id, Nats-Batch-Sequence, and Nats-Batch-Commit on the
// last), which tell where it begins and ends.

// write is what an append sends, in the order sent.
type write struct {
	agg     AggregateRef
	subject string
	events  []Event
}

// size is the number of messages of the write.
func (w *write) size() int { return len(w.events) }

// message returns the subject and id of the write's i-th message.
func (w *write) message(i int) (subject, id string) { return w.subject, w.events[i].ID }

// result is the AppendResult of the write stored from sequence first on.
func (w *write) result(first uint64, duplicate bool) AppendResult {
	return AppendResult{FirstSequence: first, LastSequence: first + uint64(len(w.events)) - 1, Duplicate: duplicate}
}

// Batch headers the server keeps on every message of a stored atomic batch.
const (
	batchIDHeader       = "Nats-Batch-Id"
	batchSequenceHeader = "Nats-Batch-Sequence"
	batchCommitHeader   = "Nats-Batch-Commit"
)

// storedAt reports whether the write is stored from sequence first on, read through the stream
// leader (which has every acknowledged write). m, if not nil, is the message at first.
func (s *Store) storedAt(ctx context.Context, w *write, first uint64, m *jetstream.RawStreamMsg) (bool, error) {
	n := w.size()
	last := first + uint64(n) - 1
	var batchID string
	matches := func(i int, m *jetstream.RawStreamMsg) bool {
		subject, id := w.message(i)
		if m.Sequence != first+uint64(i) || m.Subject != subject || m.Header.Get(HeaderEventID) != id {
			return false
		}
		if n == 1 {
			return len(m.Header[batchIDHeader]) == 0
		}
		if i == 0 {
			batchID = m.Header.Get(batchIDHeader)
		}
		return batchID != "" && m.Header.Get(batchIDHeader) == batchID &&
			m.Header.Get(batchSequenceHeader) == strconv.Itoa(i+1) &&
			(i == n-1) == (len(m.Header[batchCommitHeader]) > 0)
	}
	if m == nil {
		var err error
		if m, err = s.leaderGet(ctx, msgGetRequest{Seq: first}); err != nil {
			return false, notFoundIsFalse(err)
		}
	}
	if !matches(0, m) || n == 1 {
		return n == 1 && matches(0, m), nil
	}
	// The leader has the last message: a replica that lags will reach it, so a direct read up to
	// it cannot wait for a message that does not exist.
	lm, err := s.leaderGet(ctx, msgGetRequest{Seq: last})
	if err != nil {
		return false, notFoundIsFalse(err)
	}
	if !matches(n-1, lm) {
		return false, nil
	}
	i := 1
	for m, err := range s.messages(ctx, "", first+1, &loadOptions{upToSeq: last}, last) {
		if err != nil {
			return false, err
		}
		if !matches(i, m) {
			return false, nil
		}
		i++
	}
	return i == n, nil
}

func notFoundIsFalse(err error) error {
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	return err
}

// duplicateAck resolves a publish that the server acknowledged as a duplicate of the message
// stored at seq: the same write, or an id reused by another.
func (s *Store) duplicateAck(ctx context.Context, w *write, seq uint64) (AppendResult, error) {
	m, err := s.leaderGet(ctx, msgGetRequest{Seq: seq})
	if err != nil {
		return AppendResult{}, s.unresolved(w, "acknowledged as a duplicate", err)
	}
	same, err := s.storedAt(ctx, w, seq, m)
	if err != nil {
		return AppendResult{}, s.unresolved(w, "acknowledged as a duplicate", err)
	}
	if same {
		return w.result(seq, true), nil
	}
	_, id := w.message(0)
	return AppendResult{}, &EventIDReusedError{Aggregate: w.agg, EventID: id, Sequence: seq, StoredOn: storedOn(m)}
}

// storedOn returns the aggregate a stored message names in its headers.
func storedOn(m *jetstream.RawStreamMsg) AggregateRef {
	return AggregateRef{Type: m.Header.Get(HeaderAggregateType), ID: m.Header.Get(HeaderAggregateID)}
}

// resolveConflict resolves an append that the server refused because the aggregate is not at
// the expected sequence: the same write stored right after expected (a retry whose reply was
// lost) is a duplicate; the first event stored there by another write is an
// *EventIDReusedError; anything else is a *ConcurrencyError, which reloading resolves.
func (s *Store) resolveConflict(ctx context.Context, w *write, expected uint64, cause error) (AppendResult, error) {
	first, err := s.leaderGet(ctx, msgGetRequest{Seq: expected + 1, NextFor: w.subject})
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return AppendResult{}, s.unresolved(w, cause.Error(), err)
	}
	if err == nil && first.Header.Get(HeaderEventID) == w.events[0].ID {
		same, err := s.storedAt(ctx, w, first.Sequence, first)
		if err != nil {
			return AppendResult{}, s.unresolved(w, cause.Error(), err)
		}
		if same {
			return w.result(first.Sequence, true), nil
		}
		return AppendResult{}, &EventIDReusedError{Aggregate: w.agg, EventID: w.events[0].ID, Sequence: first.Sequence, StoredOn: storedOn(first), Err: cause}
	}
	cerr := &ConcurrencyError{Aggregate: w.agg, Expected: expected, Err: cause}
	if last, err := s.leaderGet(ctx, msgGetRequest{LastFor: w.subject}); err == nil {
		cerr.Actual = last.Sequence
	}
	return AppendResult{}, cerr
}

// resolveDuplicateID resolves a batch that the server refused for an id already stored (within
// the duplicates window), the expected sequence being right: the same write stored earlier on
// the aggregate (a retry decided after a reload) is a duplicate; anything else is an
// *EventIDReusedError. The aggregate's messages are read from its first on: the server does not
// say which id it found, nor where.
func (s *Store) resolveDuplicateID(ctx context.Context, w *write, cause error) (AppendResult, error) {
	var target uint64
	if s.cfg.Replicas > 1 {
		last, err := s.leaderGet(ctx, msgGetRequest{LastFor: w.subject})
		if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return AppendResult{}, s.unresolved(w, cause.Error(), err)
		}
		if last == nil {
			return AppendResult{}, &EventIDReusedError{Aggregate: w.agg, Err: cause}
		}
		target = last.Sequence
	}
	for m, err := range s.messages(ctx, w.subject, 1, &loadOptions{}, target) {
		if err != nil {
			return AppendResult{}, s.unresolved(w, cause.Error(), err)
		}
		if m.Header.Get(HeaderEventID) != w.events[0].ID {
			continue
		}
		same, err := s.storedAt(ctx, w, m.Sequence, m)
		if err != nil {
			return AppendResult{}, s.unresolved(w, cause.Error(), err)
		}
		if same {
			return w.result(m.Sequence, true), nil
		}
		return AppendResult{}, &EventIDReusedError{Aggregate: w.agg, EventID: w.events[0].ID, Sequence: m.Sequence, StoredOn: storedOn(m), Err: cause}
	}
	return AppendResult{}, &EventIDReusedError{Aggregate: w.agg, Err: cause}
}

// unresolved reports that the append was refused or de-duplicated (why) and reading the stream
// to tell whether it is stored failed.
func (s *Store) unresolved(w *write, why string, err error) error {
	return fmt.Errorf("jetstore: append to %s %s, and reading it back failed: %w", w.agg, why, classify(err))
}
