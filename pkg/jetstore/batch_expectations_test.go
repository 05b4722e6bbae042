package jetstore_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/cim-infra/registry/internal/natstest"
)

// TestServerChecksEachExpectationOfAnAtomicBatch pins the server behaviour that key claims
// rest on (nats-server 2.15): in an ADR-50 atomic batch, every message may carry its own
// Nats-Expected-Last-Subject-Sequence for its own subject, the server checks each, and one that
// fails refuses the whole batch (10071) and writes nothing. R1 and R3.
func TestServerChecksEachExpectationOfAnAtomicBatch(t *testing.T) {
	t.Parallel()
	for _, r := range []int{1, 3} {
		t.Run(fmt.Sprintf("R%d", r), func(t *testing.T) {
			url := natstest.RunServer(t).ClientURL()
			if r == 3 {
				url = natstest.RunCluster(t, 3, natstest.SyncAlways()).ClientURL()
			}
			js := newJS(t, url)
			ctx := ctxT(t)
			stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "PIN", Subjects: []string{"evt.>", "key.>"},
				Replicas: r, AllowAtomicPublish: true, AllowDirect: true})
			if err != nil {
				t.Fatal(err)
			}
			msg := func(subject string, expected uint64) *nats.Msg {
				m := nats.NewMsg(subject)
				m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, fmt.Sprint(expected))
				return m
			}
			batch := func(msgs ...*nats.Msg) (*jetstreamext.BatchAck, error) {
				return jetstreamext.PublishMsgBatch(ctx, js, msgs)
			}
			state := func() uint64 {
				info, err := stream.Info(ctx)
				if err != nil {
					t.Fatal(err)
				}
				return info.State.Msgs
			}
			// A first claim: the event and the key, each expecting an empty subject. A replicated
			// stream just created may not have its leader's interest known to this server yet:
			// nothing reached the stream then, so the batch is sent again.
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				_, err := batch(msg("evt.a", 0), msg("key.k", 0))
				if err == nil {
					break
				}
				if !errors.Is(err, nats.ErrNoResponders) || time.Now().After(deadline) {
					t.Fatalf("first claim: %v", err)
				}
			}
			// A second claim of the key by another aggregate, its own expectation right: refused
			// on the key's expectation alone, nothing written.
			_, err = batch(msg("evt.b", 0), msg("key.k", 0))
			var apiErr *jetstream.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence {
				t.Fatalf("second claim: %v, want 10071", err)
			}
			if n := state(); n != 2 {
				t.Fatalf("after the refused claim the stream holds %d messages, want 2", n)
			}
			// The key's right expectation (its last sequence, 2) on a later message is accepted,
			// and so is an expectation on a third subject.
			if _, err := batch(msg("evt.b", 0), msg("key.k", 2), msg("key.j", 0)); err != nil {
				t.Fatalf("claim with the key's sequence: %v", err)
			}
			// The aggregate's expectation failing alone refuses the batch too.
			if _, err := batch(msg("evt.a", 0), msg("key.i", 0)); !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence {
				t.Fatalf("stale aggregate: %v, want 10071", err)
			}
			if n := state(); n != 5 {
				t.Fatalf("stream holds %d messages, want 5", n)
			}
		})
	}
}
