package commandservice

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/pkg/api"
)

// BenchmarkRegisterClaim measures register through the service with its hostname claim (keys
// on: the event and the claim in one atomic batch, after reading the key through the leader)
// against register without claims (-unique-keys=false: one publish), interleaved in the same
// run: each iteration registers one resource on each side. Each side has a server (R1) or a
// 3-node cluster with sync always (R3) of its own, built alike, so that the two services share
// no queue group. claim/plain is the cost of the claim.
//
//	go test -run '^$' -bench BenchmarkRegisterClaim -benchtime 300x ./internal/commandservice/
func BenchmarkRegisterClaim(b *testing.B) {
	for _, topo := range []struct {
		name     string
		replicas int
		url      func() string
	}{
		{"R1", 1, func() string { return natstest.RunServer(b, natstest.SyncAlways()).ClientURL() }},
		{"R3-sync-always", 3, func() string { return natstest.RunCluster(b, 3, natstest.SyncAlways()).ClientURL() }},
	} {
		b.Run(topo.name, func(b *testing.B) {
			keyedURL, plainURL := topo.url(), topo.url()
			startInstance(b, keyedURL, withKeys(), withReplicas(topo.replicas))
			startInstance(b, plainURL, withReplicas(topo.replicas))
			keyed, plain := newClient(b, keyedURL), newClient(b, plainURL)
			ctx := context.Background()
			register := func(c *api.Client, i int) time.Duration {
				start := time.Now()
				if _, err := c.Register(ctx, api.Register{Hostname: fmt.Sprintf("bench-%07d.example.com", i), ResourceType: "vm"}); err != nil {
					b.Fatal(err)
				}
				return time.Since(start)
			}
			// Warm both sides (connections, streams, buckets) out of the measure.
			register(keyed, -1)
			register(plain, -1)
			var withClaim, without time.Duration
			b.ResetTimer()
			for i := range b.N {
				if i%2 == 0 {
					withClaim += register(keyed, i)
					without += register(plain, i)
				} else {
					without += register(plain, i)
					withClaim += register(keyed, i)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(withClaim.Microseconds())/float64(b.N), "claim-us/op")
			b.ReportMetric(float64(without.Microseconds())/float64(b.N), "plain-us/op")
			b.ReportMetric(float64(withClaim)/float64(without), "claim/plain")
		})
	}
}
