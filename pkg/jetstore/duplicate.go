package jetstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

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
// leader (which has every acknowledged write). m, if not nil, is the message at first. The
// events identify the write: its key messages, which follow them in the batch, are derived from
// them, and a retry may need fewer (a key it holds by then).
func (s *Store) storedAt(ctx context.Context, w *write, first uint64, m *jetstream.RawStreamMsg) (bool, error) {
	n := len(w.events)
	if m == nil {
		var err error
		if m, err = s.leaderGet(ctx, msgGetRequest{Seq: first}); err != nil {
			return false, notFoundIsFalse(err)
		}
	}
	batchID := m.Header.Get(batchIDHeader)
	matches := func(i int, m *jetstream.RawStreamMsg) bool {
		if m.Sequence != first+uint64(i) || m.Header.Get(batchIDHeader) != batchID ||
			batchID != "" && m.Header.Get(batchSequenceHeader) != strconv.Itoa(i+1) {
			return false
		}
		if i >= n {
			return s.cfg.KeyPrefix != "" && strings.HasPrefix(m.Subject, s.cfg.KeyPrefix+".") && m.Header.Get(HeaderEventID) == w.keyMsgID(i-n)
		}
		return m.Subject == w.subject && m.Header.Get(HeaderEventID) == w.events[i].ID
	}
	if !matches(0, m) {
		return false, nil
	}
	if batchID == "" {
		return n == 1, nil
	}
	last := m
	if n > 1 {
		// The leader has the last event: a replica that lags will reach it, so a direct read up
		// to it cannot wait for a message that does not exist.
		var err error
		if last, err = s.leaderGet(ctx, msgGetRequest{Seq: first + uint64(n) - 1}); err != nil {
			return false, notFoundIsFalse(err)
		}
		if !matches(n-1, last) {
			return false, nil
		}
		i := 1
		for m, err := range s.messages(ctx, "", first+1, &loadOptions{upToSeq: last.Sequence}, last.Sequence) {
			if err != nil {
				return false, err
			}
			if !matches(i, m) {
				return false, nil
			}
			i++
		}
		if i != n {
			return false, nil
		}
	}
	// The key messages, up to the batch's commit.
	for i := n; len(last.Header[batchCommitHeader]) == 0; i++ {
		if i >= MaxBatch {
			return false, nil
		}
		var err error
		if last, err = s.leaderGet(ctx, msgGetRequest{Seq: first + uint64(i)}); err != nil {
			return false, notFoundIsFalse(err)
		}
		if !matches(i, last) {
			return false, nil
		}
	}
	return true, nil
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
	return AppendResult{}, &EventIDReusedError{Aggregate: w.agg, EventID: w.events[0].ID, Sequence: seq, StoredOn: storedOn(m)}
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
