package testkit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fatalRecorder is a testing.TB whose Fatalf records the message and ends the goroutine, as the
// real one does, so that a test can see WaitFor fail.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// waitFor runs WaitFor on a recorder and returns its failure message ("" if it returned).
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) string {
	t.Helper()
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		WaitFor(r, ctx, what, cond)
	}()
	select {
	case <-done:
	case <-time.After(2 * WaitTimeout):
		t.Fatalf("WaitFor(%s) neither returned nor failed", what)
	}
	return r.msg
}

// ended runs poll on a goroutine and returns its error, failing the test if it neither returns
// nor fails within twice WaitTimeout: a broken Poll must not hang its own test.
func ended(t *testing.T, poll func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- poll() }()
	select {
	case err := <-done:
		return err
	case <-time.After(2 * WaitTimeout):
		t.Fatal("the poll did not end")
		return nil
	}
}

func TestWaitForReturnsOnceTheConditionHolds(t *testing.T) {
	t.Parallel()
	var polls atomic.Int32
	if msg := waitFor(t, context.Background(), "three polls", func() bool { return polls.Add(1) == 3 }); msg != "" {
		t.Fatalf("failed: %s", msg)
	}
	if n := polls.Load(); n != 3 {
		t.Fatalf("%d polls, want 3", n)
	}
}

func TestWaitForFailsWhenTheContextEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	msg := waitFor(t, ctx, "the impossible", func() bool { return false })
	if !strings.Contains(msg, "waiting for the impossible") || !strings.Contains(msg, context.DeadlineExceeded.Error()) {
		t.Fatalf("failure message %q names neither what was awaited nor why it stopped", msg)
	}
}

func TestPollEndsWithoutADeadlineOfItsOwn(t *testing.T) {
	t.Parallel()
	// A context that never ends: only the timeout (WaitTimeout for Poll) stops the wait.
	err := ended(t, func() error { return poll(context.Background(), 50*time.Millisecond, func() bool { return false }) })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("poll under a context without deadline = %v, want a deadline exceeded", err)
	}
	// A context's own deadline comes first when it is the earlier one.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := ended(t, func() error { return poll(ctx, time.Hour, func() bool { return false }) }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("poll under a context with deadline = %v, want a deadline exceeded", err)
	}
}

func TestPollReportsTheCause(t *testing.T) {
	t.Parallel()
	cause := errors.New("the server went away")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	if err := ended(t, func() error { return Poll(ctx, func() bool { return false }) }); !errors.Is(err, cause) {
		t.Fatalf("Poll after cancel = %v, want %v", err, cause)
	}
	if err := Poll(ctx, func() bool { return true }); err != nil {
		t.Fatalf("Poll of a condition that holds at once = %v", err)
	}
}
