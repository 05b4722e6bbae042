// Package retry is the one way the services retry an operation: a Policy names, at the call
// site, how many attempts, the pauses between them and which errors are worth another attempt;
// Do runs an operation under it. Loops whose body does more than call one operation (a projector
// batch, a stream follower) use the pauses alone (Backoff).
//
// pkg/jetstore and pkg/api cannot import it (they are public and import no internal package):
// their loops say why they are their own.
package retry

import (
	"context"
	"time"
)

// Backoff is the pause before each further attempt: Next, then after each wait twice the last
// pause but at most Max. The zero Backoff waits not at all; Backoff{Next: d, Max: d} waits d every
// time.
type Backoff struct {
	Next time.Duration // the pause the next Wait takes
	Max  time.Duration // the cap of every pause after the first
}

// Wait pauses for b.Next, then sets b.Next to min(2*b.Next, b.Max). It returns false, at once, if
// ctx ends first. A zero pause returns true without looking at ctx, as a loop with no pause would.
func (b *Backoff) Wait(ctx context.Context) bool {
	if b.Next <= 0 {
		return true
	}
	t := time.NewTimer(b.Next)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	}
	b.Next = min(2*b.Next, b.Max)
	return true
}

// Policy says how Do retries an operation.
type Policy struct {
	// Attempts bounds the attempts, the first included; 0 retries until ctx ends.
	Attempts int
	// Backoff is the pause before each further attempt (zero: none).
	Backoff Backoff
	// Retryable says whether an error is worth another attempt; nil retries every error.
	Retryable func(error) bool
	// OnRetry, if set, is called before each pause with the attempt that failed (1 for the
	// first), its error and the pause to come: the place for a log line.
	OnRetry func(attempt int, err error, pause time.Duration)
}

// Do calls op until it returns nil, its error is not Retryable, Attempts are spent, or ctx ends
// during a pause. It returns op's last error, or ctx's error when ctx ended during a pause.
func Do(ctx context.Context, p Policy, op func() error) error {
	backoff := p.Backoff
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil || p.Retryable != nil && !p.Retryable(err) || p.Attempts > 0 && attempt >= p.Attempts {
			return err
		}
		if p.OnRetry != nil {
			p.OnRetry(attempt, err, backoff.Next)
		}
		if !backoff.Wait(ctx) {
			return ctx.Err()
		}
	}
}
