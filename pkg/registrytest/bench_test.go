package registrytest_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/pkg/registrytest"
)

// BenchmarkStartStop measures what a test pays for a registry of its own: Start and Close of a
// single-node registry (server, command service, query service, and the first answers of both),
// against the bare embedded JetStream server it runs on, started and stopped the same way (a
// temporary store, a free port), interleaved in the same run so that both see the same load.
// registry/bare is the ratio of their times.
func BenchmarkStartStop(b *testing.B) {
	ctx := context.Background()
	var bare, registry time.Duration
	for b.Loop() {
		start := time.Now()
		dir, err := os.MkdirTemp("", "bare-")
		if err != nil {
			b.Fatal(err)
		}
		n, err := natstest.StartServer(dir)
		if err != nil {
			b.Fatal(err)
		}
		n.Shutdown()
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		bare += time.Since(start)

		start = time.Now()
		reg, err := registrytest.Start(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := reg.Close(); err != nil {
			b.Fatal(err)
		}
		registry += time.Since(start)
	}
	ops := float64(b.N)
	b.ReportMetric(float64(bare.Microseconds())/1000/ops, "bare-ms/op")
	b.ReportMetric(float64(registry.Microseconds())/1000/ops, "registry-ms/op")
	b.ReportMetric(registry.Seconds()/bare.Seconds(), "registry/bare")
}
