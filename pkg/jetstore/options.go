package jetstore

import "fmt"

// Option configures a Store.
type Option func(*storeOptions) error

type storeOptions struct {
	upcasters  []Upcaster
	pageSize   int
	staleReads bool
}

// DefaultPageSize is the number of messages asked for in one batch direct get.
const DefaultPageSize = 1000

// WithUpcasters registers upcasters applied on read. At most one per (EventType, FromVersion);
// the option may be given several times.
func WithUpcasters(ups ...Upcaster) Option {
	return func(o *storeOptions) error {
		for _, u := range ups {
			if err := u.validate(); err != nil {
				return err
			}
		}
		o.upcasters = append(o.upcasters, ups...)
		return nil
	}
}

// WithPageSize sets how many messages one batch direct get asks for (default DefaultPageSize).
func WithPageSize(n int) Option {
	return func(o *storeOptions) error {
		if n < 1 {
			return fmt.Errorf("%w: page size %d, want 1 or more", ErrInvalidOption, n)
		}
		o.pageSize = n
		return nil
	}
}

// WithStaleReads makes loads and reads trust whichever replica answers the direct get, without
// first asking the stream leader for the aggregate's last sequence: one round trip less, but a
// load may miss the latest appends (an append decided on it then fails with ErrConcurrency).
// It changes nothing on a single-replica stream.
func WithStaleReads() Option {
	return func(o *storeOptions) error {
		o.staleReads = true
		return nil
	}
}
