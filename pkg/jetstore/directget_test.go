package jetstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/pkg/jetstore"
)

// The failure paths of the store's batch direct get: each must report the store unavailable,
// with the cause in the chain, and leave no subscription behind.

// silentStream returns a store whose stream's direct get subject has a subscriber that never
// answers (as the server does when it drops a request), on a connection of its own, and a
// channel that receives each request.
func silentStream(t *testing.T) (*jetstore.Store, *nats.Conn, <-chan struct{}) {
	t.Helper()
	url := natstest.RunServer(t).ClientURL()
	requests := make(chan struct{}, 16)
	listener := natstest.Connect(t, url)
	if _, err := listener.Subscribe("$JS.API.DIRECT.GET.SILENT", func(*nats.Msg) { requests <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	if err := listener.Flush(); err != nil {
		t.Fatal(err)
	}
	nc := natstest.Connect(t, url, nats.Timeout(time.Second))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := jetstore.New(js, jetstore.Config{Stream: "SILENT", SubjectPrefix: "silent"})
	if err != nil {
		t.Fatal(err)
	}
	return st, nc, requests
}

func TestLoadMissingStreamIsUnavailable(t *testing.T) {
	t.Parallel()
	nc := natstest.Connect(t, natstest.RunServer(t).ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := jetstore.New(js, jetstore.Config{Stream: "NOWHERE", SubjectPrefix: "nowhere"})
	if err != nil {
		t.Fatal(err)
	}
	subs := nc.NumSubscriptions()
	_, err = st.Load(context.Background(), jetstore.AggregateRef{Type: "order", ID: "o1"})
	if !jetstore.IsUnavailable(err) || !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("Load from a missing stream: %v, want ErrUnavailable wrapping ErrNoResponders", err)
	}
	err = st.ReadAll(context.Background(), 0, func(jetstore.RecordedEvent) error { return nil })
	if !jetstore.IsUnavailable(err) || !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("ReadAll from a missing stream: %v, want ErrUnavailable wrapping ErrNoResponders", err)
	}
	if _, _, err := st.LastEvent(context.Background(), jetstore.AggregateRef{Type: "order", ID: "o1"}); !jetstore.IsUnavailable(err) || !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("LastEvent from a missing stream: %v, want ErrUnavailable wrapping ErrNoResponders", err)
	}
	if n := nc.NumSubscriptions(); n != subs {
		t.Errorf("client subscriptions: %d -> %d", subs, n)
	}
}

func TestLoadUnansweredIsUnavailable(t *testing.T) {
	t.Parallel()
	st, nc, _ := silentStream(t)
	agg := jetstore.AggregateRef{Type: "order", ID: "o1"}
	subs := nc.NumSubscriptions()

	// Without a deadline of the caller's, the connection's timeout bounds the wait.
	if _, err := st.Load(context.Background(), agg); !jetstore.IsUnavailable(err) || !errors.Is(err, nats.ErrTimeout) {
		t.Errorf("unanswered Load: %v, want ErrUnavailable wrapping nats.ErrTimeout", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := st.Load(ctx, agg); !jetstore.IsUnavailable(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("unanswered Load with a deadline: %v, want ErrUnavailable wrapping DeadlineExceeded", err)
	}
	if _, _, err := st.LastEvent(ctx, agg); !jetstore.IsUnavailable(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("unanswered LastEvent with a deadline: %v, want ErrUnavailable wrapping DeadlineExceeded", err)
	}
	if n := nc.NumSubscriptions(); n != subs {
		t.Errorf("client subscriptions: %d -> %d", subs, n)
	}
}

func TestLoadConnectionClosedWhileWaiting(t *testing.T) {
	t.Parallel()
	st, nc, requests := silentStream(t)
	go func() {
		<-requests
		nc.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := st.Load(ctx, jetstore.AggregateRef{Type: "order", ID: "o1"})
	if !jetstore.IsUnavailable(err) || !errors.Is(err, nats.ErrConnectionClosed) {
		t.Errorf("Load while the connection closes: %v, want ErrUnavailable wrapping ErrConnectionClosed", err)
	}
	if _, err := st.Load(ctx, jetstore.AggregateRef{Type: "order", ID: "o2"}); !jetstore.IsUnavailable(err) || !errors.Is(err, nats.ErrConnectionClosed) {
		t.Errorf("Load on a closed connection: %v, want ErrUnavailable wrapping ErrConnectionClosed", err)
	}
}
