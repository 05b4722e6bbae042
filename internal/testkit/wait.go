package testkit

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// WaitTimeout bounds a wait whose context has no deadline of its own. It guards against a test
// that would hang; it is not a measure of speed.
const WaitTimeout = time.Minute

// maxPollInterval caps the pause between two polls: the first polls come quickly, then a slow
// condition (an HTTP scrape, a Cypher query) is asked no more than a few times a second.
const maxPollInterval = 50 * time.Millisecond

// Poll calls cond until it holds and returns nil, or returns an error when ctx ends or, if ctx has
// no deadline, after WaitTimeout. Use it where the failure message needs what cond last saw;
// WaitFor otherwise.
func Poll(ctx context.Context, cond func() bool) error {
	return poll(ctx, WaitTimeout, cond)
}

// poll is Poll with the bound of a context without deadline as a parameter, for its own test.
func poll(ctx context.Context, timeout time.Duration, cond func() bool) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	start := time.Now()
	pause := time.Millisecond
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up after %v: %w", time.Since(start).Round(time.Millisecond), context.Cause(ctx))
		case <-time.After(pause):
		}
		pause = min(2*pause, maxPollInterval)
	}
	return nil
}

// WaitFor polls cond until it holds, and fails the test naming what it waited for when ctx ends
// or, if ctx has no deadline, after WaitTimeout.
func WaitFor(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	if err := Poll(ctx, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
