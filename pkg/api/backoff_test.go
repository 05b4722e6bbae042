package api

import (
	"testing"
	"time"
)

func TestBackoffIsCappedForAnyAttemptCount(t *testing.T) {
	for _, attempt := range []int{0, 1, 5, 37, 64, 1000} {
		got := backoffFor(100*time.Millisecond, attempt)
		if got <= 0 || got > maxBackoff {
			t.Errorf("attempt %d: pause %v, want within (0, %v]", attempt, got, maxBackoff)
		}
	}
	if got := backoffFor(100*time.Millisecond, 2); got != 400*time.Millisecond {
		t.Errorf("attempt 2: %v, want 400ms", got)
	}
	if got := backoffFor(0, 10); got != 0 {
		t.Errorf("zero base: %v, want 0", got)
	}
}
