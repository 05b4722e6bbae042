package jetstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/nats-io/nats.go"
)

func TestUntilAnsweredRetriesTimeoutsOnly(t *testing.T) {
	calls := 0
	v, err := jetstore.UntilAnswered(context.Background(), func(ctx context.Context) (int, error) {
		calls++
		if _, ok := ctx.Deadline(); !ok {
			t.Fatal("attempt without a deadline")
		}
		if calls < 3 {
			return 0, nats.ErrTimeout
		}
		return 42, nil
	})
	if v != 42 || err != nil || calls != 3 {
		t.Fatalf("got %d, %v after %d calls; want 42 after 3", v, err, calls)
	}

	refused := errors.New("refused")
	calls = 0
	if _, err := jetstore.UntilAnswered(context.Background(), func(context.Context) (int, error) { calls++; return 0, refused }); !errors.Is(err, refused) || calls != 1 {
		t.Fatalf("a refusal was retried or lost: %v after %d calls", err, calls)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := jetstore.UntilAnswered(ctx, func(actx context.Context) (int, error) { <-actx.Done(); return 0, actx.Err() }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("caller's deadline: %v", err)
	}
}
