package retry

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestBackoffDoublesUpToItsCap(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		b    Backoff
		want []int // pauses in milliseconds
	}{
		{"doubling", Backoff{Next: time.Millisecond, Max: 5 * time.Millisecond},
			[]int{1, 2, 4, 5, 5}},
		{"constant", Backoff{Next: 2 * time.Millisecond, Max: 2 * time.Millisecond},
			[]int{2, 2, 2}},
		// A cap below the first pause: the first wait keeps its pause, every later one the cap
		// (as a projector with a MaxBackoff below its first pause does).
		{"cap below the first pause", Backoff{Next: 3 * time.Millisecond, Max: time.Millisecond},
			[]int{3, 1, 1}},
		{"none", Backoff{}, []int{0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := tc.b
			var got []int
			for range tc.want {
				got = append(got, int(b.Next/time.Millisecond))
				if !b.Wait(context.Background()) {
					t.Fatal("Wait under a live context reported false")
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("pauses %v ms, want %v ms", got, tc.want)
			}
		})
	}
}

func TestBackoffWaitStopsWhenTheContextEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := Backoff{Next: time.Hour, Max: time.Hour}
	if b.Wait(ctx) {
		t.Fatal("Wait of an hour under an ended context reported true")
	}
	// No pause, no look at ctx: a loop without pauses goes on as it would without the helper.
	var none Backoff
	if !none.Wait(ctx) {
		t.Fatal("a zero pause under an ended context reported false")
	}
}

var errAgain, errFinal = errors.New("again"), errors.New("final")

// run calls Do with an op that returns errs in turn (nil once they run out) and reports the
// error, the number of calls and what OnRetry saw.
func run(ctx context.Context, p Policy, errs ...error) (calls int, retried []int, err error) {
	p.OnRetry = func(attempt int, err error, _ time.Duration) { retried = append(retried, attempt) }
	err = Do(ctx, p, func() error {
		calls++
		if calls <= len(errs) {
			return errs[calls-1]
		}
		return nil
	})
	return calls, retried, err
}

func TestDo(t *testing.T) {
	t.Parallel()
	onlyAgain := func(err error) bool { return errors.Is(err, errAgain) }
	for _, tc := range []struct {
		name      string
		policy    Policy
		errs      []error
		wantErr   error
		wantCalls int
	}{
		{"success at once", Policy{}, nil, nil, 1},
		{"success after failures", Policy{}, []error{errAgain, errAgain}, nil, 3},
		{"attempts spent", Policy{Attempts: 3}, []error{errAgain, errAgain, errAgain, errAgain}, errAgain, 3},
		{"success on the last attempt", Policy{Attempts: 3}, []error{errAgain, errAgain}, nil, 3},
		{"one attempt", Policy{Attempts: 1}, []error{errAgain}, errAgain, 1},
		{"not retryable", Policy{Retryable: onlyAgain}, []error{errAgain, errFinal, errAgain}, errFinal, 2},
		{"with pauses", Policy{Backoff: Backoff{Next: time.Millisecond, Max: 2 * time.Millisecond}}, []error{errAgain, errAgain}, nil, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			calls, retried, err := run(context.Background(), tc.policy, tc.errs...)
			if !errors.Is(err, tc.wantErr) || err != nil && tc.wantErr == nil || calls != tc.wantCalls {
				t.Fatalf("Do = %v after %d calls, want %v after %d", err, calls, tc.wantErr, tc.wantCalls)
			}
			var want []int
			for a := 1; a < calls; a++ {
				want = append(want, a)
			}
			if !slices.Equal(retried, want) {
				t.Fatalf("OnRetry saw attempts %v, want %v", retried, want)
			}
		})
	}
}

func TestDoEndsWithTheContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancelCause(context.Background())
	calls := 0
	err := Do(ctx, Policy{Backoff: Backoff{Next: time.Hour, Max: time.Hour}}, func() error {
		calls++
		cancel(errFinal)
		return errAgain
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("Do after the context ended during its pause = %v after %d calls, want %v after 1", err, calls, context.Canceled)
	}
	// Without pauses Do does not look at ctx: the operation sees it end, as the loops Do replaced.
	calls, _, err = run(ctx, Policy{Attempts: 3}, errAgain, errAgain)
	if err != nil || calls != 3 {
		t.Fatalf("Do without pauses under an ended context = %v after %d calls, want success after 3", err, calls)
	}
}
