package jetstore_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/pkg/jetstore"
)

// The benchmarks time the store and raw JetStream doing the same work on the same server in the
// same run, interleaved, and report both figures and their ratio.

// originalEventsPerSecond is the append rate measured on the system this store replaces.
const originalEventsPerSecond = 167

func benchStore(b *testing.B, cfg jetstore.Config) (*jetstore.Store, jetstream.JetStream) {
	b.Helper()
	n := natstest.RunServer(b)
	js, err := jetstream.New(natstest.Connect(b, n.ClientURL()))
	if err != nil {
		b.Fatal(err)
	}
	return ensure(b, js, cfg), js
}

func ensure(b *testing.B, js jetstream.JetStream, cfg jetstore.Config) *jetstore.Store {
	b.Helper()
	st, err := jetstore.New(js, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := st.EnsureStream(context.Background()); err != nil {
		b.Fatal(err)
	}
	return st
}

// pair accumulates the time of the store and of raw JetStream over b.N rounds.
type pair struct{ store, raw time.Duration }

func (p pair) report(b *testing.B, unit string) {
	n := float64(b.N)
	b.ReportMetric(float64(p.store.Microseconds())/n, "store-us/"+unit)
	b.ReportMetric(float64(p.raw.Microseconds())/n, "raw-us/"+unit)
	b.ReportMetric(float64(p.store)/float64(p.raw), "store/raw")
}

func timed(d *time.Duration, f func()) {
	start := time.Now()
	f()
	*d += time.Since(start)
}

// allocated adds to bytes what f allocated in the whole process (the embedded server included).
// It reads the memory statistics before and after f, outside the time taken by timed.
func allocated(bytes *uint64, f func()) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	*bytes += after.TotalAlloc - before.TotalAlloc
}

// BenchmarkAppendOne appends single events, on a single server and on a 3-node cluster with
// sync always (R3), against a raw publish with the same headers and expectation.
func BenchmarkAppendOne(b *testing.B) {
	b.Run("R1", func(b *testing.B) {
		st, js := benchStore(b, jetstore.Config{})
		benchAppendOne(b, st, js)
	})
	b.Run("R3-sync-always", func(b *testing.B) {
		c := natstest.RunCluster(b, 3, natstest.SyncAlways())
		js, err := jetstream.New(natstest.Connect(b, c.ClientURL()))
		if err != nil {
			b.Fatal(err)
		}
		benchAppendOne(b, ensure(b, js, jetstore.Config{Replicas: 3}), js)
	})
}

func benchAppendOne(b *testing.B, st *jetstore.Store, js jetstream.JetStream) {
	ctx := context.Background()
	agg := jetstore.AggregateRef{Type: "bench", ID: "store"}
	rawSubject := "cim.evt.bench.raw"
	var p pair
	var last, rawLast uint64
	b.ResetTimer()
	for i := range b.N {
		ev := jetstore.Event{ID: fmt.Sprintf("s-%d", i), Type: "Benchmarked", SchemaVersion: 1, Data: []byte(`{"n":1}`),
			CorrelationID: "c", CausationID: "c", CommandID: "c"}
		timed(&p.store, func() {
			res, err := st.Append(ctx, agg, last, []jetstore.Event{ev})
			if err != nil {
				b.Fatal(err)
			}
			last = res.LastSequence
		})
		m := &nats.Msg{Subject: rawSubject, Data: ev.Data, Header: nats.Header{}}
		for k, v := range map[string]string{jetstore.HeaderEventType: ev.Type, jetstore.HeaderEventVersion: "1",
			jetstore.HeaderCorrelationID: "c", jetstore.HeaderCausationID: "c", jetstore.HeaderCommandID: "c",
			jetstore.HeaderAggregateType: "bench", jetstore.HeaderAggregateID: "raw"} {
			m.Header.Set(k, v)
		}
		timed(&p.raw, func() {
			ack, err := js.PublishMsg(ctx, m, jetstream.WithMsgID(fmt.Sprintf("r-%d", i)), jetstream.WithExpectLastSequencePerSubject(rawLast))
			if err != nil {
				b.Fatal(err)
			}
			rawLast = ack.Sequence
		})
	}
	p.report(b, "append")
	b.ReportMetric(float64(b.N)/p.store.Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/p.store.Seconds()/originalEventsPerSecond, "x-original")
}

// BenchmarkAppendBatch appends 100 events per call, one atomic batch.
func BenchmarkAppendBatch100(b *testing.B) {
	st, js := benchStore(b, jetstore.Config{})
	ctx := context.Background()
	agg := jetstore.AggregateRef{Type: "bench", ID: "batch"}
	var p pair
	var last uint64
	b.ResetTimer()
	for i := range b.N {
		evs := make([]jetstore.Event, 100)
		msgs := make([]*nats.Msg, 100)
		for j := range evs {
			evs[j] = jetstore.Event{ID: fmt.Sprintf("b-%d-%d", i, j), Type: "Benchmarked", SchemaVersion: 1, Data: []byte(`{"n":1}`)}
			msgs[j] = &nats.Msg{Subject: "cim.evt.bench.rawbatch", Data: evs[j].Data, Header: nats.Header{
				jetstore.HeaderEventID: {fmt.Sprintf("rb-%d-%d", i, j)}, jetstore.HeaderEventType: {"Benchmarked"}, jetstore.HeaderEventVersion: {"1"}}}
		}
		timed(&p.store, func() {
			res, err := st.Append(ctx, agg, last, evs)
			if err != nil {
				b.Fatal(err)
			}
			last = res.LastSequence
		})
		timed(&p.raw, func() {
			if _, err := jetstreamext.PublishMsgBatch(ctx, js, msgs); err != nil {
				b.Fatal(err)
			}
		})
	}
	p.report(b, "batch")
	b.ReportMetric(float64(100*b.N)/p.store.Seconds(), "events/s")
	b.ReportMetric(float64(100*b.N)/p.store.Seconds()/originalEventsPerSecond, "x-original")
}

// fill appends n events to agg in batches.
func fill(b *testing.B, st *jetstore.Store, agg jetstore.AggregateRef, n int) {
	b.Helper()
	var last uint64
	for done := 0; done < n; {
		k := min(jetstore.MaxBatch, n-done)
		evs := make([]jetstore.Event, k)
		for j := range evs {
			evs[j] = jetstore.Event{ID: fmt.Sprintf("%s-%d", agg, done+j), Type: "Filled", SchemaVersion: 1, Data: []byte(`{"field":"some value of a typical size"}`)}
		}
		res, err := st.Append(context.Background(), agg, last, evs)
		if err != nil {
			b.Fatal(err)
		}
		last, done = res.LastSequence, done+k
	}
}

// rawLoad reads subject with batch direct get, as the store does, without decoding.
func rawLoad(b *testing.B, js jetstream.JetStream, stream, subject string, batch int) int {
	it, err := jetstreamext.GetBatch(context.Background(), js, stream, batch, jetstreamext.GetBatchSubject(subject))
	if err != nil {
		b.Fatal(err)
	}
	var n int
	for _, err := range it {
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
	return n
}

func BenchmarkLoad(b *testing.B) {
	st, js := benchStore(b, jetstore.Config{})
	for _, size := range []int{10, 100, 1000} {
		agg := jetstore.AggregateRef{Type: "bench", ID: fmt.Sprintf("load%d", size)}
		fill(b, st, agg, size)
		subject, _ := st.Subject(agg)
		b.Run(fmt.Sprintf("events=%d", size), func(b *testing.B) {
			var p pair
			var storeBytes, rawBytes uint64
			for range b.N {
				allocated(&storeBytes, func() {
					timed(&p.store, func() {
						l, err := st.Load(context.Background(), agg)
						if err != nil || len(l.Events) != size {
							b.Fatalf("load: %d events, %v", len(l.Events), err)
						}
					})
				})
				allocated(&rawBytes, func() {
					timed(&p.raw, func() {
						if n := rawLoad(b, js, st.Config().Stream, subject, size); n != size {
							b.Fatalf("raw: %d messages", n)
						}
					})
				})
			}
			p.report(b, "load")
			b.ReportMetric(float64(storeBytes)/float64(b.N), "store-B/load")
			b.ReportMetric(float64(rawBytes)/float64(b.N), "raw-B/load")
		})
	}
}

// fillSpread publishes total messages to stream store's subjects with async publish: the
// aggregate's 100 events spread evenly among messages of other aggregates.
func fillSpread(b *testing.B, js jetstream.JetStream, st *jetstore.Store, agg jetstore.AggregateRef, events, total int) {
	b.Helper()
	subject, _ := st.Subject(agg)
	prefix := st.Config().SubjectPrefix
	every := total / events
	for i := range total {
		m := &nats.Msg{Subject: fmt.Sprintf("%s.other.o%d", prefix, i%5000), Data: []byte(`{"field":"some value of a typical size"}`), Header: nats.Header{}}
		if i%every == 0 {
			m.Subject = subject
		}
		m.Header.Set(jetstore.HeaderEventID, fmt.Sprintf("%s-%d", prefix, i))
		m.Header.Set(jetstore.HeaderEventType, "Filled")
		m.Header.Set(jetstore.HeaderEventVersion, "1")
		for {
			_, err := js.PublishMsgAsync(m)
			if err == nil {
				break
			}
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				b.Fatal(err)
			}
			<-js.PublishAsyncComplete() // the server is behind: let it catch up, then resend
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		b.Fatal("async publish did not complete")
	}
}

// BenchmarkLoadByStreamSize loads a 100-event aggregate from a stream of 1,000 messages and from
// one of 1,000,000 (100,000 with -short), in two layouts: "contiguous", the 100 events appended
// together (one batch) after the rest; "spread", the 100 events spread evenly over the whole
// stream among other aggregates' events.
func BenchmarkLoadByStreamSize(b *testing.B) {
	large := 1_000_000
	if testing.Short() {
		large = 100_000
	}
	n := natstest.RunServer(b)
	js, err := jetstream.New(natstest.Connect(b, n.ClientURL()), jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	spread := jetstore.AggregateRef{Type: "bench", ID: "spread"}
	contiguous := jetstore.AggregateRef{Type: "bench", ID: "contiguous"}
	small := ensure(b, js, jetstore.Config{Stream: "SMALL", SubjectPrefix: "small"})
	big := ensure(b, js, jetstore.Config{Stream: "LARGE", SubjectPrefix: "large"})
	fillSpread(b, js, small, spread, 100, 1000-100)
	fillSpread(b, js, big, spread, 100, large-100)
	fill(b, small, contiguous, 100)
	fill(b, big, contiguous, 100)
	for _, agg := range []jetstore.AggregateRef{contiguous, spread} {
		b.Run(fmt.Sprintf("layout=%s/small=1000/large=%d", agg.ID, large), func(b *testing.B) {
			var small1, large1 time.Duration
			for range b.N {
				for _, c := range []struct {
					st *jetstore.Store
					d  *time.Duration
				}{{small, &small1}, {big, &large1}} {
					timed(c.d, func() {
						l, err := c.st.Load(context.Background(), agg)
						if err != nil || len(l.Events) != 100 {
							b.Fatalf("load: %d events, %v", len(l.Events), err)
						}
					})
				}
			}
			b.ReportMetric(float64(small1.Microseconds())/float64(b.N), "small-us/load")
			b.ReportMetric(float64(large1.Microseconds())/float64(b.N), "large-us/load")
			b.ReportMetric(float64(large1)/float64(small1), "large/small")
		})
	}
}

// BenchmarkAppendWithClaim appends one event with the claim of a new key (a 2-message atomic
// batch, after reading the key) against one event alone, and a raw 2-message atomic batch
// against a raw single publish, interleaved in the same run, on a single server and on a
// 3-node cluster with sync always (R3). claim/one is the cost of a claim.
func BenchmarkAppendWithClaim(b *testing.B) {
	cfg := jetstore.Config{KeyPrefix: jetstore.DefaultKeyPrefix}
	b.Run("R1", func(b *testing.B) {
		st, js := benchStore(b, cfg)
		benchAppendWithClaim(b, st, js)
	})
	b.Run("R3-sync-always", func(b *testing.B) {
		c := natstest.RunCluster(b, 3, natstest.SyncAlways())
		js, err := jetstream.New(natstest.Connect(b, c.ClientURL()))
		if err != nil {
			b.Fatal(err)
		}
		cfg := cfg
		cfg.Replicas = 3
		benchAppendWithClaim(b, ensure(b, js, cfg), js)
	})
}

func benchAppendWithClaim(b *testing.B, st *jetstore.Store, js jetstream.JetStream) {
	ctx := context.Background()
	var one, claim, rawOne, rawBatch time.Duration
	var oneLast uint64
	b.ResetTimer()
	for i := range b.N {
		ev := func(kind string) []jetstore.Event {
			return []jetstore.Event{{ID: fmt.Sprintf("%s-%d", kind, i), Type: "Benchmarked", SchemaVersion: 1, Data: []byte(`{"n":1}`)}}
		}
		timed(&one, func() {
			res, err := st.Append(ctx, jetstore.AggregateRef{Type: "bench", ID: "one"}, oneLast, ev("one"))
			if err != nil {
				b.Fatal(err)
			}
			oneLast = res.LastSequence
		})
		timed(&claim, func() {
			agg := jetstore.AggregateRef{Type: "bench", ID: fmt.Sprint("claim", i)}
			if _, err := st.Append(ctx, agg, 0, ev("claim"), jetstore.Claim("hostname", fmt.Sprintf("host-%d.example.com", i))); err != nil {
				b.Fatal(err)
			}
		})
		raw := func(subject, id string) *nats.Msg {
			m := nats.NewMsg(subject)
			m.Header.Set(jetstore.HeaderEventID, id)
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
			m.Data = []byte(`{"n":1}`)
			return m
		}
		timed(&rawOne, func() {
			if _, err := js.PublishMsg(ctx, raw(fmt.Sprint("cim.evt.raw.one", i), fmt.Sprint("r1-", i))); err != nil {
				b.Fatal(err)
			}
		})
		timed(&rawBatch, func() {
			msgs := []*nats.Msg{raw(fmt.Sprint("cim.evt.raw.batch", i), fmt.Sprint("rb-", i)), raw(fmt.Sprint("cim.key.raw.k", i), fmt.Sprint("rk-", i))}
			if _, err := jetstreamext.PublishMsgBatch(ctx, js, msgs); err != nil {
				b.Fatal(err)
			}
		})
	}
	n := float64(b.N)
	b.ReportMetric(float64(one.Microseconds())/n, "one-us/append")
	b.ReportMetric(float64(claim.Microseconds())/n, "claim-us/append")
	b.ReportMetric(float64(claim)/float64(one), "claim/one")
	b.ReportMetric(float64(rawBatch)/float64(rawOne), "rawbatch2/rawone")
}
