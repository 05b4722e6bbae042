package commandservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/tracing"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// BenchmarkCommands measures the service against raw JetStream in the same run, on the same
// server: b.N commands (update_metadata or add_policy, one event each) over 1,000 registered resources by
// 1, 16 and 64 concurrent clients, and b.N raw publishes with the expected-last-subject-sequence
// header and a Nats-Msg-Id over 1,000 subjects of the same stream by as many publishers. Every
// client works on its own share of the resources, so neither side has conflicts.
//
// It runs twice, each time on a server of its own, as the service is deployed:
//   - service=tcp: the service reaches its server over a socket, as in Kubernetes, where it
//     runs beside a NATS cluster;
//   - service=in-process: the service embeds its server and connects to it without a socket
//     (nats.InProcessServer), as the command service does when no NATS URL is configured.
//
// The clients and the raw publishers always use TCP, as users' tools do.
//
// Besides throughput and latency it reports the CPU time of the whole process (service,
// clients and the embedded server) per command and per raw publish: on a shared machine
// throughput moves with the other load, CPU per operation much less, and when the machine is
// the bottleneck the throughput ratio cannot exceed the inverse of the CPU ratio.
//
// A third measurement, the floor, alternates with the two in the same rounds: what a service
// in front of JetStream costs before it runs a line of its own code. A bare nats.go queue
// subscription, on a connection like the service's (a socket or in-process), takes requests
// sent with nc.Request by as many clients (one connection, like the service's clients),
// publishes each request body with a Nats-Msg-Id and the expected-last-subject-sequence header
// to the same stream, on subjects of its own, and replies with the acknowledged sequence. That
// is the messages of a command (request, publish, acknowledgement, reply) with no decoding, no
// domain, no cache and no metrics; it reports floor-msg/s, floor-ratio (floor/raw),
// svc-vs-floor (service/floor: what the service adds, its own code and the event's metadata
// headers, which the floor does not send), the floor's p50 and p99,
// and its CPU per operation (floor-cpu-µs/op, to compare with cpu-µs/cmd). Over TCP, on the
// 2-core machine of issue #4, where a system call is dear, the floor costs about twice the CPU
// of a raw publish (one more request and reply through the server, four more socket writes and
// reads), so floor-ratio is about 0.42-0.5 at 1 client, where every step is on the critical
// path. The floor is what nats.go's usual calls cost, not a hard bound: a hand-tuned responder
// with no work of its own reaches 0.51-0.55 there (BenchmarkLeanResponder).
//
//	go test -run '^$' -bench BenchmarkCommands -benchtime 10000x ./internal/commandservice/
func BenchmarkCommands(b *testing.B) {
	for _, mode := range []struct {
		name      string
		inProcess bool
	}{{"tcp", false}, {"in-process", true}} {
		b.Run("service="+mode.name, func(b *testing.B) { benchmarkCommands(b, mode.inProcess) })
	}
}

// BenchmarkCommandsTraced is BenchmarkCommands with tracing on in the whole process (the
// clients', the service's spans), every trace sampled, spans handed through the SDK's batch span
// processor to an exporter in the process that counts them: the cost of tracing, to compare
// with BenchmarkCommands in the same run (its ratios to raw, and its CPU per command).
//
//	go test -run '^$' -bench 'BenchmarkCommands(Traced)?/service=tcp' -benchtime 10000x ./internal/commandservice/
func BenchmarkCommandsTraced(b *testing.B) {
	exp := &countingExporter{}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(exp))
	restore := tracing.Use(tp)
	defer func() {
		restore()
		_ = tp.Shutdown(context.Background())
		if exp.spans.Load() == 0 {
			b.Error("no span exported")
		}
	}()
	BenchmarkCommands(b)
}

// countingExporter is an in-process span exporter that counts what it is given.
type countingExporter struct{ spans atomic.Int64 }

func (e *countingExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.spans.Add(int64(len(spans)))
	return nil
}

func (e *countingExporter) Shutdown(context.Context) error { return nil }

func benchmarkCommands(b *testing.B, inProcess bool) {
	srv := natstest.RunServer(b)
	url := srv.ClientURL()
	// serviceConn returns a connection of the kind the service uses.
	serviceConn := func() *nats.Conn {
		if inProcess {
			return natstest.ConnectInProcess(b, srv)
		}
		return natstest.Connect(b, url)
	}
	in := startInstanceOn(b, serviceConn())
	ctx := context.Background()

	const resources = 1000
	ids := make([]string, resources)
	setup := newClient(b, url)
	var wg sync.WaitGroup
	for w := range 50 {
		wg.Go(func() {
			for i := w; i < resources; i += 50 {
				r, err := setup.Register(ctx, api.Register{Hostname: fmt.Sprintf("bench-%d", i), ResourceType: "vm"})
				if err != nil {
					b.Error(err)
					return
				}
				ids[i] = r.AggregateID
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	if in.svc.cache.len() != resources {
		b.Fatalf("cache holds %d resources, want %d", in.svc.cache.len(), resources)
	}

	rawNC := natstest.Connect(b, url)
	js, err := jetstream.New(rawNC)
	if err != nil {
		b.Fatal(err)
	}
	rawOp := rawPublisher(js, resources)
	payload := []byte(`{"event_id":"` + uuid.NewString() + `","aggregate_id":"` + uuid.NewString() + `","command_id":"` +
		uuid.NewString() + `","correlation_id":"` + uuid.NewString() + `","timestamp":"2026-01-01T00:00:00Z","key":"k","value":"` +
		strings.Repeat("v", 16) + `"}`)
	client, err := api.NewClient(natstest.Connect(b, url), api.WithTimeout(30*time.Second))
	if err != nil {
		b.Fatal(err)
	}
	startFloor(b, serviceConn(), resources)
	floorNC := natstest.Connect(b, url)

	var seq atomic.Int64
	commands := []struct {
		name string
		send func(worker, i int, id string) error
	}{
		// update_metadata with a value the resource never held. The client sends its own command
		// id, so this and add_policy each read the results bucket once (the command id may have
		// been refused or changed nothing before), then append.
		{api.CmdUpdateMetadata, func(worker, i int, id string) error {
			// A value never used before, so that every command writes.
			_, err := client.UpdateMetadata(ctx, api.UpdateMetadata{Target: api.Target{AggregateID: id},
				Key: "k", Value: fmt.Sprintf("v%d", seq.Add(1))})
			return err
		}},
		{api.CmdAddPolicy, func(worker, i int, id string) error {
			_, err := client.AddPolicy(ctx, api.AddPolicy{Target: api.Target{AggregateID: id}, PolicyID: uuid.NewString()})
			return err
		}},
	}
	for _, clients := range []int{1, 16, 64} {
		for _, cmd := range commands {
			b.Run(fmt.Sprintf("clients=%d/%s", clients, cmd.name), func(b *testing.B) {
				svcOp := func(worker, i, res int) error { return cmd.send(worker, i, ids[res]) }
				floorOp := func(worker, i, res int) error { return request(floorNC, floorSubject(res), payload) }
				m := inRounds(b.N, clients, resources, func(_, _, res int) error { return rawOp(res, payload) }, svcOp, floorOp)
				raw, svc, floor := m[0], m[1], m[2]
				if raw.err != nil || svc.err != nil || floor.err != nil {
					b.Fatalf("raw: %v; service: %v; floor: %v", raw.err, svc.err, floor.err)
				}
				b.ReportMetric(svc.perSecond, "cmd/s")
				b.ReportMetric(raw.perSecond, "raw-msg/s")
				b.ReportMetric(svc.perSecond/raw.perSecond, "throughput-ratio")
				b.ReportMetric(micros(svc.p50), "p50-µs")
				b.ReportMetric(micros(svc.p99), "p99-µs")
				b.ReportMetric(micros(raw.p50), "raw-p50-µs")
				b.ReportMetric(micros(raw.p99), "raw-p99-µs")
				b.ReportMetric(float64(svc.p99)/float64(raw.p99), "p99-ratio")
				b.ReportMetric(floor.perSecond, "floor-msg/s")
				b.ReportMetric(floor.perSecond/raw.perSecond, "floor-ratio")
				b.ReportMetric(svc.perSecond/floor.perSecond, "svc-vs-floor")
				b.ReportMetric(micros(floor.p50), "floor-p50-µs")
				b.ReportMetric(micros(floor.p99), "floor-p99-µs")
				if svc.cpu > 0 && raw.cpu > 0 {
					b.ReportMetric(micros(svc.cpu)/float64(len(svc.latencies)), "cpu-µs/cmd")
					b.ReportMetric(micros(raw.cpu)/float64(len(raw.latencies)), "raw-cpu-µs/msg")
					b.ReportMetric(float64(svc.cpu)/float64(len(svc.latencies))/(float64(raw.cpu)/float64(len(raw.latencies))), "cpu-ratio")
				}
				if floor.cpu > 0 {
					b.ReportMetric(micros(floor.cpu)/float64(len(floor.latencies)), "floor-cpu-µs/op")
				}
			})
		}
	}
}

// floorErrorHeader carries the floor responder's error, if any.
const floorErrorHeader = "Bench-Error"

// floorSubject is the request subject of the floor for a resource: the last token names the
// resource, so the responder needs no decoding.
func floorSubject(res int) string { return "bench.floor." + strconv.Itoa(res) }

// startFloor starts the floor responder of BenchmarkCommands on nc, a connection of its own:
// per request, one publish of the body to the resource's subject of the event stream,
// conditional on that subject's last sequence, and a reply with the new sequence.
func startFloor(b *testing.B, nc *nats.Conn, resources int) {
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	last := make([]atomic.Uint64, resources)
	// A subscription's callbacks run one at a time: each request goes to a goroutine of its own,
	// as the service hands each to a worker, so that requests wait for the store concurrently.
	_, err = nc.QueueSubscribe("bench.floor.*", "bench-floor", func(m *nats.Msg) {
		go func() {
			res, err := resourceOf(m.Subject, resources)
			if err != nil {
				replyFailure(nc, m, err)
				return
			}
			pub := nats.NewMsg("cim.evt.benchfloor.r" + strconv.Itoa(res))
			pub.Data = m.Data
			pub.Header.Set(jetstream.MsgIDHeader, uuid.NewString())
			ack, err := js.PublishMsg(context.Background(), pub, jetstream.WithExpectLastSequencePerSubject(last[res].Load()))
			if err != nil {
				replyFailure(nc, m, err)
				return
			}
			last[res].Store(ack.Sequence)
			_ = nc.Publish(m.Reply, strconv.AppendUint(nil, ack.Sequence, 10))
		}()
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
}

// resourceOf reads the resource a floor or lean request subject names in its last token.
func resourceOf(subject string, resources int) (int, error) {
	res, err := strconv.Atoi(subject[strings.LastIndexByte(subject, '.')+1:])
	if err != nil || res < 0 || res >= resources {
		return 0, fmt.Errorf("subject %s names no resource", subject)
	}
	return res, nil
}

// replyFailure answers a floor or lean request with err in floorErrorHeader.
func replyFailure(nc *nats.Conn, m *nats.Msg, err error) {
	r := nats.NewMsg(m.Reply)
	r.Header.Set(floorErrorHeader, err.Error())
	_ = nc.PublishMsg(r)
}

// request sends a floor or lean request and turns a reply carrying floorErrorHeader into an
// error.
func request(nc *nats.Conn, subject string, payload []byte) error {
	m, err := nc.Request(subject, payload, 30*time.Second)
	if err != nil {
		return err
	}
	if e := m.Header.Get(floorErrorHeader); e != "" {
		return fmt.Errorf("%s: %s", subject, e)
	}
	return nil
}

// rawPublisher returns the raw operation of the benchmarks: a publish of payload to the
// resource's subject of the event stream with a new Nats-Msg-Id, conditional on the subject's
// last sequence, which it keeps.
func rawPublisher(js jetstream.JetStream, resources int) func(res int, payload []byte) error {
	last := make([]uint64, resources)
	return func(res int, payload []byte) error {
		msg := nats.NewMsg("cim.evt.benchraw.r" + strconv.Itoa(res))
		msg.Data = payload
		msg.Header.Set(jetstream.MsgIDHeader, uuid.NewString())
		ack, err := js.PublishMsg(context.Background(), msg, jetstream.WithExpectLastSequencePerSubject(last[res]))
		if err != nil {
			return err
		}
		last[res] = ack.Sequence
		return nil
	}
}

// measurement accumulates the latencies and the busy time of rounds of operations.
type measurement struct {
	latencies []time.Duration
	elapsed   time.Duration
	cpu       time.Duration // process CPU time while the operations ran
	perSecond float64
	p50, p99  time.Duration
	err       error
}

func (m *measurement) add(o measurement) {
	m.latencies = append(m.latencies, o.latencies...)
	m.elapsed += o.elapsed
	m.cpu += o.cpu
	if m.err == nil {
		m.err = o.err
	}
}

// finish computes the throughput and the latency percentiles.
func (m *measurement) finish() {
	if len(m.latencies) == 0 {
		return
	}
	slices.Sort(m.latencies)
	m.perSecond = float64(len(m.latencies)) / m.elapsed.Seconds()
	m.p50 = m.latencies[len(m.latencies)/2]
	m.p99 = m.latencies[len(m.latencies)*99/100]
}

// inRounds measures each of ops for total operations with `clients` goroutines, in rounds that
// alternate between them, so that all see the same load from whatever else runs on the machine.
// The measurements come back finished, in the order of ops.
func inRounds(total, clients, resources int, ops ...func(worker, i, resource int) error) []measurement {
	const rounds = 10
	m := make([]measurement, len(ops))
	for r := range rounds {
		n := total / rounds
		if r < total%rounds {
			n++
		}
		for i, op := range ops {
			m[i].add(measure(n, clients, resources, op))
		}
	}
	for i := range m {
		m[i].finish()
	}
	return m
}

// measure runs n operations with `clients` goroutines; worker w handles the resources r with
// r % clients == w, in turn, so that no two workers share a resource.
func measure(n, clients, resources int, op func(worker, i, resource int) error) measurement {
	var mu sync.Mutex
	var m measurement
	var wg sync.WaitGroup
	start, cpu := time.Now(), processCPU()
	for w := range clients {
		share := n / clients
		if w < n%clients {
			share++
		}
		wg.Go(func() {
			var mine []int
			for r := w; r < resources; r += clients {
				mine = append(mine, r)
			}
			own := make([]time.Duration, 0, share)
			for i := range share {
				t := time.Now()
				if err := op(w, i, mine[i%len(mine)]); err != nil {
					mu.Lock()
					m.err = err
					mu.Unlock()
					return
				}
				own = append(own, time.Since(t))
			}
			mu.Lock()
			m.latencies = append(m.latencies, own...)
			mu.Unlock()
		})
	}
	wg.Wait()
	m.elapsed, m.cpu = time.Since(start), processCPU()-cpu
	return m
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// BenchmarkLeanResponder measures, at one client over TCP, how far below raw JetStream the
// floor of BenchmarkCommands is for want of hand-tuning rather than by necessity: beside raw
// publishes and the floor, a lean responder takes the same requests in the same rounds, hands
// each to one long-lived goroutine, publishes with a reply subject of its own (a channel
// subscription, so the acknowledgement goes from the connection's reader straight to that
// goroutine rather than through nats.go's shared reply subscription) and replies. It does no
// work of its own and serves one request at a time, so it says nothing about more clients.
//
//	go test -run '^$' -bench BenchmarkLeanResponder -benchtime 5000x ./internal/commandservice/
func BenchmarkLeanResponder(b *testing.B) {
	srv := natstest.RunServer(b)
	url := srv.ClientURL()
	startInstance(b, url) // creates the event stream
	const resources = 1000
	payload := []byte(`{"policy_id":"` + uuid.NewString() + `","aggregate_id":"` + uuid.NewString() + `"}`)
	js, err := jetstream.New(natstest.Connect(b, url))
	if err != nil {
		b.Fatal(err)
	}
	rawOp := rawPublisher(js, resources)
	startFloor(b, natstest.Connect(b, url), resources)
	startLean(b, natstest.Connect(b, url), resources)
	clientNC := natstest.Connect(b, url)

	floorOp := func(_, _, res int) error { return request(clientNC, floorSubject(res), payload) }
	leanOp := func(_, _, res int) error { return request(clientNC, leanSubject(res), payload) }
	m := inRounds(b.N, 1, resources, func(_, _, res int) error { return rawOp(res, payload) }, floorOp, leanOp)
	raw, floor, lean := m[0], m[1], m[2]
	if raw.err != nil || floor.err != nil || lean.err != nil {
		b.Fatalf("raw: %v; floor: %v; lean: %v", raw.err, floor.err, lean.err)
	}
	b.ReportMetric(raw.perSecond, "raw-msg/s")
	b.ReportMetric(floor.perSecond/raw.perSecond, "floor-ratio")
	b.ReportMetric(lean.perSecond/raw.perSecond, "lean-ratio")
	b.ReportMetric(micros(raw.p50), "raw-p50-µs")
	b.ReportMetric(micros(floor.p50), "floor-p50-µs")
	b.ReportMetric(micros(lean.p50), "lean-p50-µs")
}

func leanSubject(res int) string { return "bench.lean." + strconv.Itoa(res) }

// startLean starts the lean responder of BenchmarkLeanResponder on nc.
func startLean(b *testing.B, nc *nats.Conn, resources int) {
	acks := make(chan *nats.Msg, 16)
	inbox := nc.NewInbox()
	if _, err := nc.ChanSubscribe(inbox, acks); err != nil {
		b.Fatal(err)
	}
	last := make([]uint64, resources)
	work := make(chan *nats.Msg)
	done := make(chan struct{})
	b.Cleanup(func() { close(done) })
	go func() {
		for {
			var m *nats.Msg
			select {
			case m = <-work:
			case <-done:
				return
			}
			res, err := resourceOf(m.Subject, resources)
			if err != nil {
				replyFailure(nc, m, err)
				continue
			}
			pub := nats.NewMsg("cim.evt.benchlean.r" + strconv.Itoa(res))
			pub.Reply = inbox
			pub.Data = m.Data
			pub.Header.Set(jetstream.MsgIDHeader, uuid.NewString())
			pub.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(last[res], 10))
			if err := nc.PublishMsg(pub); err != nil {
				replyFailure(nc, m, err)
				continue
			}
			var ack *nats.Msg
			select {
			case ack = <-acks:
			case <-time.After(30 * time.Second):
				replyFailure(nc, m, errors.New("no acknowledgement"))
				continue
			}
			var pa struct {
				Seq   uint64              `json:"seq"`
				Error *jetstream.APIError `json:"error"`
			}
			if err := json.Unmarshal(ack.Data, &pa); err != nil {
				replyFailure(nc, m, fmt.Errorf("acknowledgement %s: %w", ack.Data, err))
				continue
			}
			if pa.Error != nil {
				replyFailure(nc, m, pa.Error)
				continue
			}
			last[res] = pa.Seq
			_ = nc.Publish(m.Reply, strconv.AppendUint(nil, pa.Seq, 10))
		}
	}()
	if _, err := nc.QueueSubscribe("bench.lean.*", "bench-lean", func(m *nats.Msg) {
		select {
		case work <- m:
		case <-done:
		}
	}); err != nil {
		b.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
}
