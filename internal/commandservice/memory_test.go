package commandservice

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/google/uuid"
)

// BenchmarkAggregateMemory measures the heap one cached aggregate keeps per event of its
// history (state, command results for duplicate detection, values held), for 10,000 events of
// one command each: metadata updates with values never repeated (the worst case of the held
// values) and policies added.
//
//	go test -run '^$' -bench BenchmarkAggregateMemory ./internal/commandservice/
func BenchmarkAggregateMemory(b *testing.B) {
	const events = 10_000
	for _, kind := range []string{"update_metadata", "add_policy"} {
		b.Run(kind, func(b *testing.B) {
			id := uuid.New()
			host, _ := cr.ParseHostname("mem")
			meta := func() cr.CommandMeta { return cr.CommandMeta{CommandID: uuid.New(), Timestamp: time.Now()} }
			cmds := []cr.Command{cr.RegisterResource{Meta: meta(), ID: id, Hostname: host, Type: cr.ResourceTypes()[0]}}
			for i := range events - 1 {
				if kind == "update_metadata" {
					cmds = append(cmds, cr.UpdateMetadata{Meta: meta(), ID: id, Key: "k", Value: fmt.Sprint("v", i)})
				} else {
					cmds = append(cmds, cr.AddPolicy{Meta: meta(), ID: id, PolicyID: cr.PolicyID(uuid.New())})
				}
			}
			var perEvent float64
			for range b.N {
				// Decided first, so that only what the aggregate keeps is measured.
				var st cr.State
				decided := make([]cr.Event, len(cmds))
				for i, c := range cmds {
					evs, err := cr.Decide(st, c)
					if err != nil || len(evs) != 1 {
						b.Fatalf("command %d: %v", i, err)
					}
					st, decided[i] = cr.Apply(st, evs[0]), evs[0]
				}
				before := heapInUse()
				a := new(aggregate)
				for i, e := range decided {
					a.record(e, uint64(i+1))
				}
				after := heapInUse()
				runtime.KeepAlive(a)
				runtime.KeepAlive(decided)
				perEvent = float64(after-before) / events
			}
			b.ReportMetric(perEvent, "heap-B/event")
		})
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
