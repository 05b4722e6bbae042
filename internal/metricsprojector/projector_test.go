package metricsprojector

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/projector"
	"github.com/cim-infra/registry/internal/testkit"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// value sums the samples of one metric family (0 if absent).
func value(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			v += m.GetGauge().GetValue() + m.GetCounter().GetValue() + m.GetUntyped().GetValue()
		}
	}
	return v
}

func TestFiguresEqualTheDomainFoldAcrossRestarts(t *testing.T) {
	e := newEnv(t, 11, 120)
	e.write(600)

	in := e.start(defaultTestOptions(), nil)
	e.waitSeq(in, e.head)
	e.exp.check(t, gatherFigures(t, in.reg))
	if got := value(t, in.reg, MetricEvents); got != e.exp.total() {
		t.Fatalf("events counted %v, written %v", got, e.exp.total())
	}
	// More events while it runs: the consumer phase.
	e.write(400)
	e.waitSeq(in, e.head)
	e.exp.check(t, gatherFigures(t, in.reg))
	in.shutdown(t)
	if got := e.savedSequence(DefaultBucket); got != e.head {
		t.Fatalf("final snapshot at %d, want the head %d", got, e.head)
	}

	// Restart mid-stream: events written while it was down are replayed after the snapshot.
	e.write(500)
	in = e.start(defaultTestOptions(), nil)
	e.waitReady(in)
	e.waitSeq(in, e.head)
	e.exp.check(t, gatherFigures(t, in.reg))
	// The runner's position is the restored one before any new event.
	if got := value(t, in.reg, "cim_projector_last_applied_sequence"); got != float64(e.head) {
		t.Errorf("cim_projector_last_applied_sequence = %v after the restart, want the restored sequence %d", got, e.head)
	}
	e.write(200)
	e.waitSeq(in, e.head)
	e.exp.check(t, gatherFigures(t, in.reg))
	if got := value(t, in.reg, MetricEvents); got != e.exp.total() {
		t.Fatalf("after a restart: events counted %v, written %v", got, e.exp.total())
	}
	if got := value(t, in.reg, MetricStateSequence); got != float64(e.head) {
		t.Errorf("%s = %v, want %d", MetricStateSequence, got, e.head)
	}
	in.shutdown(t)
}

// A crash after the state applied a batch and before the runner acknowledged it, with the last
// snapshot far behind: the restart replays from the snapshot, and the redeliveries of the
// unacknowledged batch are skipped.
func TestCrashBetweenApplyAndAck(t *testing.T) {
	e := newEnv(t, 12, 100)
	e.write(300)
	opts := defaultTestOptions()
	opts.SnapshotEvery = 1 << 30 // only the final snapshot of the first run
	opts.AckWait = 0             // the service's default (30 s): the held batch would come back only then

	in := e.start(opts, nil)
	e.waitSeq(in, e.head)
	in.shutdown(t)
	snap := e.head

	e.write(400)
	crashed := make(chan struct{})
	var crashAt uint64
	in = e.start(opts, func(p *Projector, nc *nats.Conn) {
		p.afterReplay = func() { e.write(300) } // so that the consumer has batches to apply
		p.sink.afterApply = func(batch []projector.Delivery) {
			// Batches of events the replay applied are skipped; crash on the first new one.
			if crashAt == 0 && batch[len(batch)-1].Sequence > snap+400 {
				crashAt = batch[len(batch)-1].Sequence
				p.noFinalSnapshot.Store(true)
				nc.Close() // the acknowledgements of this batch are lost
				close(crashed)
			}
		}
	})
	<-crashed
	in.crash()
	if got := e.savedSequence(DefaultBucket); got != snap {
		t.Fatalf("snapshot at %d, want still %d", got, snap)
	}
	if crashAt <= snap {
		t.Fatalf("crashed at %d, not after the snapshot at %d", crashAt, snap)
	}

	in = e.start(opts, nil)
	e.waitSeq(in, e.head)
	e.waitReady(in)
	e.exp.check(t, gatherFigures(t, in.reg))
	// The restarted consumer starts after the replayed state: the batch the killed process held
	// keeps nothing back (it is not waited for, nor delivered again), and nothing counts twice.
	e.write(50)
	e.waitSeq(in, e.head)
	e.exp.check(t, gatherFigures(t, in.reg))
	if got := value(t, in.reg, MetricEvents); got != e.exp.total() {
		t.Fatalf("events counted %v, written %v", got, e.exp.total())
	}
	if got := value(t, in.reg, "cim_projector_redeliveries_total"); got != 0 {
		t.Errorf("%v redeliveries after the restart: the new events waited for the killed process's batch", got)
	}
	in.shutdown(t)
}

// A crash after the runner acknowledged everything and before a snapshot: the consumer's ack
// floor is far above the snapshot, and the replay covers the difference.
func TestCrashAfterAckBeforeSnapshot(t *testing.T) {
	e := newEnv(t, 13, 100)
	e.write(200)
	opts := defaultTestOptions()
	opts.SnapshotEvery = 1 << 30

	in := e.start(opts, nil)
	e.waitSeq(in, e.head)
	in.shutdown(t)
	snap := e.head

	in = e.start(opts, nil)
	e.waitReady(in)
	e.write(500) // through the consumer, acknowledged
	e.waitSeq(in, e.head)
	in.crash()
	if got := e.savedSequence(DefaultBucket); got != snap {
		t.Fatalf("snapshot at %d, want still %d", got, snap)
	}

	in = e.start(opts, nil)
	e.waitReady(in)
	e.waitSeq(in, e.head)
	e.exp.check(t, gatherFigures(t, in.reg))
	e.write(100)
	e.waitSeq(in, e.head)
	e.exp.check(t, gatherFigures(t, in.reg))
	in.shutdown(t)
}

func TestLagWhileBehind(t *testing.T) {
	e := newEnv(t, 14, 60)
	e.write(100)
	opts := defaultTestOptions()
	opts.BatchSize = 10
	caughtUp := e.head
	hold, release := make(chan struct{}), make(chan struct{})
	batches := 0
	in := e.start(opts, func(p *Projector, _ *nats.Conn) {
		p.afterReplay = func() { e.write(100) }
		p.sink.afterApply = func(batch []projector.Delivery) {
			// Batches of the replayed events are skipped; of the new ones, the runner sets the
			// lag once the first returns: hold the second.
			if batch[0].Sequence <= caughtUp {
				return
			}
			if batches++; batches == 2 {
				close(hold)
				<-release
			}
		}
	})
	<-hold
	behind := e.head
	want := float64(behind - caughtUp - 10)
	if got := value(t, in.reg, "cim_projector_lag_events"); got != want {
		t.Errorf("lag = %v events, want %v", got, want)
	}
	if got := value(t, in.reg, "cim_projector_last_applied_sequence"); got != float64(caughtUp+10) {
		t.Errorf("last applied = %v, want %d", got, caughtUp+10)
	}
	if got := value(t, in.reg, "cim_projector_lag_seconds"); got <= 0 {
		t.Errorf("lag seconds = %v while behind, want > 0", got)
	}
	close(release)
	e.waitSeq(in, behind)
	e.write(1) // one more batch, with nothing behind it
	e.waitSeq(in, e.head)
	// The runner updates its gauges just after Apply returns.
	e.waitFor("last applied sequence", func() bool {
		return value(t, in.reg, "cim_projector_last_applied_sequence") == float64(e.head)
	})
	if got := value(t, in.reg, "cim_projector_lag_events"); got != 0 {
		t.Errorf("lag = %v events once caught up, want 0", got)
	}
	e.exp.check(t, gatherFigures(t, in.reg))
	in.shutdown(t)
}

func poisonHeader(typ, version string) nats.Header {
	h := nats.Header{}
	h.Set(jetstore.HeaderEventID, uuid.NewString())
	h.Set(jetstore.HeaderEventType, typ)
	h.Set(jetstore.HeaderEventVersion, version)
	h.Set(jetstore.HeaderAggregateType, "computeresource")
	h.Set(jetstore.HeaderAggregateID, uuid.NewString())
	return h
}

// deadLetters returns the dead-lettered copies of this projector, by original stream sequence.
func (e *env) deadLetters() map[uint64]nats.Header {
	e.t.Helper()
	dlq, err := e.js.Stream(e.ctx, "CIM_DLQ")
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := dlq.Info(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[uint64]nats.Header{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := dlq.GetMsg(e.ctx, seq)
		if err != nil {
			e.t.Fatal(err)
		}
		if m.Subject != "cim.dlq.metrics" {
			continue
		}
		orig, err := strconv.ParseUint(m.Header.Get(projector.HeaderDLQStreamSeq), 10, 64)
		if err != nil {
			e.t.Fatal(err)
		}
		if _, dup := out[orig]; dup {
			e.t.Errorf("event %d dead-lettered twice", orig)
		}
		out[orig] = m.Header
	}
	return out
}

func TestPoisonEventsAreDeadLetteredAndCountedOnce(t *testing.T) {
	e := newEnv(t, 15, 80)
	opts := defaultTestOptions()
	opts.SnapshotEvery = 1 << 30 // no snapshot: the restart replays from the first event
	e.write(100)
	// Present before the start: met by the replay.
	badJSON := e.publishRaw(poisonHeader("StatusChanged", "1"), []byte(`{"status":`))
	e.write(100)
	noHeaders := e.publishRaw(nats.Header{"Some-Header": []string{"x"}}, []byte(`{}`))
	e.write(50)

	in := e.start(opts, nil)
	e.waitReady(in)
	e.waitSeq(in, e.head)
	// Written while it consumes: met by the runner.
	unknownType := e.publishRaw(poisonHeader("ResourceExploded", "1"), []byte(`{}`))
	e.write(50)
	e.waitSeq(in, e.head)

	e.exp.check(t, gatherFigures(t, in.reg))
	if got := value(t, in.reg, metricReplayDead); got != 2 {
		t.Errorf("replay dead letters = %v, want 2", got)
	}
	if got := value(t, in.reg, "cim_projector_dead_letters_total"); got != 1 {
		t.Errorf("consumer dead letters = %v, want 1", got)
	}
	dl := e.deadLetters()
	for _, seq := range []uint64{badJSON, noHeaders, unknownType} {
		h, ok := dl[seq]
		if !ok {
			t.Errorf("event %d not dead-lettered (have %v)", seq, dl)
			continue
		}
		if h.Get(projector.HeaderDLQReason) == "" || h.Get(projector.HeaderDLQProjector) != "metrics" {
			t.Errorf("dead letter of %d: headers %v", seq, h)
		}
	}
	if len(dl) != 3 {
		t.Errorf("%d dead letters, want 3", len(dl))
	}

	// A crash, and a restart from the first snapshot: the replay meets the three again, and
	// neither dead-letters nor counts them a second time.
	in.crash()
	e.write(20)
	in = e.start(opts, nil)
	e.waitReady(in)
	e.waitSeq(in, e.head)
	e.exp.check(t, gatherFigures(t, in.reg))
	if got := value(t, in.reg, metricReplayDead); got != 0 {
		t.Errorf("after restart: replay dead letters = %v, want 0", got)
	}
	if got := len(e.deadLetters()); got != 3 {
		t.Errorf("after restart: %d dead letters, want 3", got)
	}
	in.shutdown(t)
}

func TestSnapshotOfAnotherSchemaIsIgnored(t *testing.T) {
	e := newEnv(t, 16, 50)
	e.write(200)
	in := e.start(defaultTestOptions(), nil)
	e.waitSeq(in, e.head)
	in.shutdown(t)

	obs, err := e.js.ObjectStore(e.ctx, DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	// A future version's snapshot, claiming a sequence past everything.
	if _, err := obs.Put(e.ctx, jetstream.ObjectMeta{Name: SnapshotObject,
		Metadata: map[string]string{metaSchema: "999", metaSequence: "1000000"}}, nil); err != nil {
		t.Fatal(err)
	}
	in = e.start(defaultTestOptions(), nil)
	e.waitReady(in)
	e.waitSeq(in, e.head)
	e.exp.check(t, gatherFigures(t, in.reg))
	in.shutdown(t)
}

func TestReplayLogsProgress(t *testing.T) {
	e := newEnv(t, 19, 200)
	e.write(2500)
	var buf testkit.LogBuffer
	e.log = zerolog.New(&buf)
	opts := defaultTestOptions()
	opts.ProgressEvery = time.Nanosecond
	in := e.start(opts, nil)
	e.waitReady(in)
	in.shutdown(t)

	var progress, done int
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		switch rec["message"] {
		case "replaying":
			progress++
			for _, k := range []string{"applied", "total", "remaining", "events_per_s", "time_left"} {
				if _, ok := rec[k]; !ok {
					t.Errorf("progress line without %s: %s", k, line)
				}
			}
			if rec["total"] != float64(e.head) {
				t.Errorf("progress total %v, want %d", rec["total"], e.head)
			}
		case "replay done":
			done++
		}
	}
	if progress == 0 || done != 1 {
		t.Errorf("%d progress lines and %d done lines, want some and 1:\n%s", progress, done, buf.String())
	}
}
