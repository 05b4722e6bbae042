// Package jsx holds the small JetStream helpers the services share.
package jsx

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
)

// AttemptTimeout bounds one attempt of Answered.
const AttemptTimeout = 2 * time.Second

// Answered calls f with a deadline of AttemptTimeout per attempt, and calls it again while the
// attempt timed out and ctx still has time. A replicated stream that is being created (by this
// process or another one starting at the same moment) has no leader yet, and the server leaves
// requests about it unanswered until it has one: without a short attempt, the first such
// request would use up the caller's whole deadline.
func Answered[T any](ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	for {
		actx, cancel := context.WithTimeout(ctx, AttemptTimeout)
		v, err := f(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !timedOut(err) {
			return v, err
		}
	}
}

func timedOut(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
}
