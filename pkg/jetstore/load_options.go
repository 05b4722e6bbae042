package jetstore

import (
	"fmt"
	"time"
)

// LoadOption narrows a Load.
type LoadOption func(*loadOptions) error

type loadOptions struct {
	after     uint64
	upToSeq   uint64
	upToTime  time.Time
	maxEvents int // 0: no limit
	// prefix, if set, skips the messages whose subject does not start with it (ReadAll reads
	// without a subject filter).
	prefix string
}

// After loads only the events with a stream sequence greater than seq: the tail to fold onto a
// state that stands for seq (a cache or a snapshot).
func After(seq uint64) LoadOption {
	return func(o *loadOptions) error {
		o.after = seq
		return nil
	}
}

// UpToSequence loads only the events with a stream sequence up to and including seq: the
// aggregate as it was at that point of the stream.
func UpToSequence(seq uint64) LoadOption {
	return func(o *loadOptions) error {
		if seq == 0 {
			return fmt.Errorf("%w: up to sequence 0", ErrInvalidOption)
		}
		o.upToSeq = seq
		return nil
	}
}

// UpToTime loads only the events written at or before t (server time): the aggregate as it was
// then.
func UpToTime(t time.Time) LoadOption {
	return func(o *loadOptions) error {
		if t.IsZero() {
			return fmt.Errorf("%w: up to the zero time", ErrInvalidOption)
		}
		o.upToTime = t
		return nil
	}
}

// MaxEvents loads at most n events, the first n within the other bounds, and sets Loaded.More
// when at least one more follows within them: a page of a long history (with After for the
// next page). Only as many events are read from the server as the page needs, plus one to tell
// whether more follow.
func MaxEvents(n int) LoadOption {
	return func(o *loadOptions) error {
		if n < 1 {
			return fmt.Errorf("%w: at most %d events, want 1 or more", ErrInvalidOption, n)
		}
		o.maxEvents = n
		return nil
	}
}

// includes reports whether an event at seq and t is within the upper bounds.
func (o *loadOptions) includes(seq uint64, t time.Time) bool {
	if o.upToSeq != 0 && seq > o.upToSeq {
		return false
	}
	if !o.upToTime.IsZero() && t.After(o.upToTime) {
		return false
	}
	return true
}
