package jetstore

import (
	"context"
	"fmt"
	"iter"
)

// ReadAll calls fn with every event of every aggregate from stream sequence from on (1 or 0 for
// the beginning), in stream order, upcast, until it has read the stream's last message as of the
// call (on a replicated stream, read from the leader); then it returns nil.
// It is the catch-up read of projectors and replays: it reads with batch direct get and creates no
// consumer. An error from fn stops the read and is returned as is.
func (s *Store) ReadAll(ctx context.Context, from uint64, fn func(RecordedEvent) error) error {
	for e, err := range s.All(ctx, from) {
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// All is ReadAll as an iterator. Breaking out of the loop ends the read.
func (s *Store) All(ctx context.Context, from uint64) iter.Seq2[RecordedEvent, error] {
	return func(yield func(RecordedEvent, error) bool) {
		target, err := s.leaderLast(ctx, s.cfg.SubjectPrefix+".>")
		if err != nil {
			yield(RecordedEvent{}, fmt.Errorf("jetstore: read all from %d: %w", from, err))
			return
		}
		// No subject filter: the server then reads the stream block by block, while with a
		// wildcard filter it matches every message against the subjects of its block, which
		// with many aggregates per block made a 1,000-message page of a 500,000-event stream of
		// 100,000 aggregates outlast the request timeout. Messages of other subjects, in a
		// stream shared with something else, are skipped here instead.
		for e, err := range s.read(ctx, "", from, &loadOptions{prefix: s.cfg.SubjectPrefix + "."}, target) {
			if err != nil {
				yield(RecordedEvent{}, fmt.Errorf("jetstore: read all from %d: %w", from, err))
				return
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}
