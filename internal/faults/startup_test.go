package faults

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/commandservice"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/projector"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// TestConcurrentFirstStart starts, at the same moment, three command service instances and two
// projectors' dead-letter set-up on a fresh R3 cluster, as a first deployment does: each of
// them creates the streams and buckets it needs if they are missing. Every one must start.
//
// It failed before jetstore.EnsureStream, the command service's results bucket and
// projector.EnsureDeadLetterStream retried their requests with a short per-attempt timeout
// (RELIABILITY.md, section 4, entry 2): while a replicated stream is being created it has no
// leader, and the server leaves a STREAM.INFO request for it unanswered, so whoever lost the
// creation race waited for its whole context.
func TestConcurrentFirstStart(t *testing.T) {
	t.Parallel()
	c := natstest.RunCluster(t, 3, natstest.SyncAlways())
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for i := range 3 {
		nc := natstest.Connect(t, c.ClientURL())
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			svc, err := commandservice.New(ctx, nc, jetstore.Config{Replicas: 3}, commandservice.DefaultOptions(), zerolog.Nop(), prometheus.NewRegistry())
			if err != nil {
				errs <- fmt.Errorf("command service instance %d did not start (%s): %w", i, time.Since(start).Round(time.Millisecond), err)
				return
			}
			_ = svc.Shutdown(ctx)
		})
	}
	for i := range 2 {
		js, err := jetstream.New(natstest.Connect(t, c.ClientURL()))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			if err := projector.EnsureDeadLetterStream(ctx, js, projector.DeadLetterConfig{Replicas: 3}); err != nil {
				errs <- fmt.Errorf("projector %d could not set up its dead-letter stream (%s): %w", i, time.Since(start).Round(time.Millisecond), err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
