package queryservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/projector"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

// TestUndecodableAndForeignEvents: an event the model cannot decode is counted, dead-lettered
// once (a second instance meeting it leaves the dead letter alone) and skipped; an event of
// another aggregate type is skipped; the model goes on with the events after them.
func TestUndecodableAndForeignEvents(t *testing.T) {
	e := newEnv(t, 61, 20)
	e.write(30)
	a := e.startReady(testOptions())
	bad := e.publishRaw("cim.evt.computeresource."+uuid.NewString(), nats.Header{"X-Test": []string{"no store headers"}}, []byte("{"))
	h := nats.Header{}
	h.Set(jetstore.HeaderEventType, "WidgetSpun")
	h.Set(jetstore.HeaderEventVersion, "1")
	e.publishRaw("cim.evt.widget."+uuid.NewString(), h, []byte(`{}`))
	e.write(30)
	e.waitSeq(a, e.head)
	rows, _ := e.listAll(api.List{Limit: api.MaxListLimit})
	expectEqualFold(t, rows, e.states, e.version)

	if n := testutil.ToFloat64(a.svc.metrics.undecodable); n != 1 {
		t.Fatalf("unapplied events %v, want 1", n)
	}
	if n := testutil.ToFloat64(a.svc.metrics.skipped); n != 1 {
		t.Fatalf("skipped events %v, want 1", n)
	}
	if n := testutil.ToFloat64(a.svc.metrics.deadLetters); n != 1 {
		t.Fatalf("dead letters %v, want 1", n)
	}
	dlq, err := e.js.Stream(e.ctx, "CIM_DLQ")
	if err != nil {
		t.Fatal(err)
	}
	m, err := dlq.GetLastMsgForSubject(e.ctx, "cim.dlq."+ServiceName)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(projector.HeaderDLQStreamSeq) != strconv.FormatUint(bad, 10) || m.Header.Get(projector.HeaderDLQReason) == "" ||
		m.Header.Get("X-Test") != "no store headers" || string(m.Data) != "{" {
		t.Fatalf("dead letter %+v %q", m.Header, m.Data)
	}

	// A second instance meets the same event: counted, not dead-lettered again.
	b := e.startReady(testOptions())
	e.waitSeq(b, e.head)
	if n := testutil.ToFloat64(b.svc.metrics.undecodable); n != 1 {
		t.Fatalf("second instance: unapplied events %v, want 1", n)
	}
	if n := testutil.ToFloat64(b.svc.metrics.deadLetters); n != 0 {
		t.Fatalf("second instance wrote %v dead letters, want 0", n)
	}
	info, err := dlq.Info(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("dead-letter stream holds %d messages, want 1", info.State.Msgs)
	}
}

// TestServesOnlyOnceCaughtUp: an instance started on a long stream answers nothing until its
// model has applied the head as it stood at start: the first answer it gives is at that head or
// later, and its readiness fails before.
func TestServesOnlyOnceCaughtUp(t *testing.T) {
	e := newEnv(t, 71, 300)
	e.write(2500)
	headAtStart := e.head
	in := e.start(Options{BatchSize: 10})
	sawNotReady := false
	for {
		if err := in.svc.Ready(e.ctx); err != nil {
			// Caught up but not yet in the queue group is not ready either.
			if !errors.Is(err, ErrNotCaughtUp) && !errors.Is(err, ErrNotServing) {
				t.Fatalf("readiness: %v", err)
			}
			sawNotReady = true
		}
		var p api.Counts
		apiErr, err := request(e.ctx, e.nc, api.QueryCount, api.Count{By: "status"}, &p)
		if errors.Is(err, nats.ErrNoResponders) {
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil || apiErr != nil {
			t.Fatalf("count: %v %v", err, apiErr)
		}
		if p.AsOfSequence < headAtStart {
			t.Fatalf("first answer at sequence %d, below the head %d at start", p.AsOfSequence, headAtStart)
		}
		break
	}
	if err := in.svc.Ready(e.ctx); err != nil {
		t.Fatalf("serving but not ready: %v", err)
	}
	t.Logf("readiness seen failing before the first answer: %v", sawNotReady)
}

// TestReadyMeansAnswering: the moment readiness first passes, a query from another connection
// finds a responder; a probe that sends traffic as soon as /readyz says 200 gets no
// "no responders".
func TestReadyMeansAnswering(t *testing.T) {
	e := newEnv(t, 72, 100)
	e.write(500)
	for round := range 5 {
		in := e.start(Options{BatchSize: 10})
		e.waitFor("readiness", func() bool { return in.svc.Ready(e.ctx) == nil })
		var p api.Counts
		if apiErr, err := request(e.ctx, e.nc, api.QueryCount, api.Count{By: "status"}, &p); err != nil || apiErr != nil {
			t.Fatalf("round %d: the first query after readiness: %v %v", round, err, apiErr)
		}
		if err := in.shutdown(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMicroDiscovery: the service announces itself as a NATS micro service with its three
// endpoints, each on its subject in the shared queue group, as `nats micro info` shows it.
func TestMicroDiscovery(t *testing.T) {
	e := newEnv(t, 91, 5)
	e.startReady(testOptions())
	m, err := e.nc.RequestWithContext(e.ctx, "$SRV.INFO."+api.QueryServiceName, nil)
	if err != nil {
		t.Fatal(err)
	}
	var info micro.Info
	if err := json.Unmarshal(m.Data, &info); err != nil {
		t.Fatal(err)
	}
	if info.Name != api.QueryServiceName || len(info.Endpoints) != len(api.Queries()) {
		t.Fatalf("info %+v", info)
	}
	for _, ep := range info.Endpoints {
		if ep.QueueGroup != api.QueryServiceQueueGroup || ep.Subject != api.QuerySubject(ep.Name) || !slices.Contains(api.Queries(), ep.Name) {
			t.Fatalf("endpoint %+v", ep)
		}
	}
}

// TestReadAgainAfterAFailedRead: a read of the stream that ended (as after an error) leaves its
// ordered consumer on the server until -consumer-inactive; the next read from the model's newer
// sequence must not ask for a consumer of the same name, which the server refuses (10012,
// start sequence can not be updated), stalling the model until the old one expires.
func TestReadAgainAfterAFailedRead(t *testing.T) {
	e := newEnv(t, 73, 50)
	e.write(100)
	opts := testOptions()
	opts.ConsumerPrefix = "read-again"
	opts.fillDefaults()
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	f := newFollower(e.js, NewModel(), opts, zerolog.Nop(), m)
	for round := range 3 {
		head := e.head
		ctx, cancel := context.WithCancel(e.ctx)
		done := make(chan error, 1)
		go func() { done <- f.follow(ctx) }()
		e.waitFor(fmt.Sprintf("round %d: the model at the head %d, or the read failing", round, head), func() bool {
			select {
			case err := <-done:
				cancel()
				t.Fatalf("round %d: the read from sequence %d ended: %v", round, f.model.Sequence()+1, err)
			default:
			}
			return f.model.Sequence() >= head
		})
		cancel()
		<-done // the read ends; its consumer stays on the server
		e.write(100)
	}
}

// TestStopsAfterTheStreamIsDeleted: an instance whose stream was deleted under it (its ordered
// consumer goes with it, and nats.go tries to make the consumer again, by default for ever and
// deaf to the context) still stops promptly when asked.
func TestStopsAfterTheStreamIsDeleted(t *testing.T) {
	e := newEnv(t, 29, 20)
	e.write(50)
	in := e.startReady(testOptions())
	e.waitSeq(in, e.head)
	if err := e.js.DeleteStream(e.ctx, "CIM_EVENTS"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the consumer is gone; the read is being set up again
	in.stop()
	select {
	case <-in.done:
	case <-time.After(15 * time.Second):
		t.Fatal("the instance did not stop within 15 s of being asked, its stream deleted")
	}
	if in.err != nil {
		t.Fatalf("run: %v", in.err)
	}
}
