package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// runLimits measures raw JetStream, the limit of every other figure, against core NATS doing the
// same exchange without storage: a sync publish is a request-reply round trip plus a write; a
// batch direct get is a request with many replies plus reads; async publish and ordered-consumer
// reads are streams of messages.
func runLimits(ctx context.Context, e *env, res *ScenarioResult) error {
	setup, err := e.singleStore(ctx, "limits", jetstream.WithPublishAsyncMaxPending(e.sz.asyncWindow))
	if err != nil {
		return err
	}
	defer setup.release()
	nc, js, st := setup.nc, setup.js, setup.st
	peer, err := e.connect(ctx, setup.url) // the core NATS responder and subscriber
	if err != nil {
		return err
	}
	defer peer.Close()
	prefix, stream := st.Config().SubjectPrefix, st.Config().Stream
	core := "_bench." + e.run

	// Sync publish against a core request-reply of the same size.
	ack := []byte(`{"stream":"` + stream + `","seq":123456}`)
	echo, err := peer.Subscribe(core+".echo", func(m *nats.Msg) { _ = m.Respond(ack) })
	if err != nil {
		return err
	}
	defer echo.Unsubscribe()
	if err := peer.Flush(); err != nil {
		return err
	}
	req, pub, err := interleave(e.sz.reps, e.sz.budget,
		func(int) error { _, err := nc.Request(core+".echo", fillerData, 5*time.Second); return err },
		func(int) error { _, err := js.Publish(ctx, prefix+".limits.sync", fillerData); return err })
	if err != nil {
		return fmt.Errorf("sync publish: %w", err)
	}
	res.Figures = append(res.Figures, latencyFigure("JetStream sync publish", pub, "core NATS request-reply", req))

	// Async publish against core publish to a subscriber, message for message.
	coreRate, asyncRate, err := alternate(e.sz.rounds,
		func() (loadResult, error) { return corePubSub(ctx, nc, peer, core+".stream", e.sz.asyncMsgs) },
		func() (loadResult, error) {
			start := time.Now()
			err := publishAsync(ctx, js, e.sz.asyncMsgs, func(int) *nats.Msg {
				return &nats.Msg{Subject: prefix + ".limits.async", Data: fillerData}
			})
			return loadResult{ops: e.sz.asyncMsgs, wall: time.Since(start), lat: &sample{}}, err
		})
	if err != nil {
		return fmt.Errorf("async publish: %w", err)
	}
	res.Figures = append(res.Figures, rateFigure(fmt.Sprintf("JetStream async publish (window %d)", e.sz.asyncWindow),
		asyncRate.rate(), "msgs/s", "core NATS publish to a subscriber", coreRate.rate()))

	// Batch direct get of 100 messages against a core request answered by 100 messages.
	const batch = 100
	if err := publishAsync(ctx, js, batch, func(int) *nats.Msg { return &nats.Msg{Subject: prefix + ".limits.get", Data: fillerData} }); err != nil {
		return err
	}
	burst, err := peer.Subscribe(core+".burst", func(m *nats.Msg) {
		for range batch {
			_ = peer.Publish(m.Reply, fillerData)
		}
		_ = peer.Publish(m.Reply, nil)
	})
	if err != nil {
		return err
	}
	defer burst.Unsubscribe()
	if err := peer.Flush(); err != nil {
		return err
	}
	coreBurst, get, err := interleave(e.sz.loadReps*4, e.sz.budget,
		func(int) error { return coreBurstRequest(nc, core+".burst", batch) },
		func(int) error { return rawGet(ctx, js, stream, prefix+".limits.get", 1, batch, batch) })
	if err != nil {
		return fmt.Errorf("batch direct get: %w", err)
	}
	res.Figures = append(res.Figures, latencyFigure("JetStream batch direct get, 100 messages", get, "core NATS request, 100 replies", coreBurst))

	// Ordered-consumer read against core delivery, message for message.
	coreRead, ordered, err := alternate(e.sz.rounds,
		func() (loadResult, error) { return corePubSub(ctx, nc, peer, core+".stream", e.sz.asyncMsgs) },
		func() (loadResult, error) {
			return orderedRead(ctx, js, stream, prefix+".limits.async", e.sz.asyncMsgs)
		})
	if err != nil {
		return fmt.Errorf("ordered consumer: %w", err)
	}
	res.Figures = append(res.Figures, rateFigure("JetStream ordered-consumer read", ordered.rate(), "msgs/s",
		"core NATS publish to a subscriber", coreRead.rate()))

	res.Charts = append(res.Charts, percentileChart("limits-latency.svg", "Limits: latency percentiles (µs)",
		[]string{"core request-reply", "JetStream sync publish", "core request, 100 replies", "batch direct get, 100"},
		[]*Latency{req.latency(), pub.latency(), coreBurst.latency(), get.latency()}))
	return nil
}

// corePubSub publishes n messages on nc to a subscriber on peer and measures until the last
// one is received.
func corePubSub(ctx context.Context, nc, peer *nats.Conn, subject string, n int) (loadResult, error) {
	done := make(chan struct{})
	var got int
	sub, err := peer.Subscribe(subject, func(*nats.Msg) {
		if got++; got == n {
			close(done)
		}
	})
	if err != nil {
		return loadResult{}, err
	}
	defer sub.Unsubscribe()
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return loadResult{}, err
	}
	if err := peer.Flush(); err != nil {
		return loadResult{}, err
	}
	start := time.Now()
	for range n {
		if err := nc.Publish(subject, fillerData); err != nil {
			return loadResult{}, err
		}
	}
	if err := nc.Flush(); err != nil {
		return loadResult{}, err
	}
	select {
	case <-done:
	case <-ctx.Done():
		return loadResult{}, ctx.Err()
	case <-time.After(2 * time.Minute):
		return loadResult{}, fmt.Errorf("core subscriber got %d of %d messages", got, n)
	}
	return loadResult{ops: n, wall: time.Since(start), lat: &sample{}}, nil
}

// coreBurstRequest sends a request whose responder answers with n messages and an empty one.
func coreBurstRequest(nc *nats.Conn, subject string, n int) error {
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest(subject, inbox, nil); err != nil {
		return err
	}
	for i := 0; ; i++ {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			return fmt.Errorf("core burst: message %d: %w", i, err)
		}
		if len(m.Data) == 0 {
			if i != n {
				return fmt.Errorf("core burst: %d messages, want %d", i, n)
			}
			return nil
		}
	}
}

// rawGet reads subject from sequence from with one batch direct get of batch messages and
// checks that want messages came (0: the read must find nothing).
func rawGet(ctx context.Context, js jetstream.JetStream, stream, subject string, from uint64, batch, want int) error {
	it, err := jetstreamext.GetBatch(ctx, js, stream, batch, jetstreamext.GetBatchSeq(from), jetstreamext.GetBatchSubject(subject))
	if err != nil {
		return err
	}
	var n int
	for _, err := range it {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			break
		}
		if err != nil {
			return err
		}
		n++
	}
	if n != want {
		return fmt.Errorf("batch direct get of %s: %d messages, want %d", subject, n, want)
	}
	return nil
}

// orderedRead reads the first n messages on subject with an ordered consumer, timed from its
// creation to the last message.
func orderedRead(ctx context.Context, js jetstream.JetStream, stream, subject string, n int) (loadResult, error) {
	start := time.Now()
	cfg := jetstream.OrderedConsumerConfig{}
	if subject != "" {
		cfg.FilterSubjects = []string{subject}
	}
	cons, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return loadResult{}, err
	}
	it, err := cons.Messages()
	if err != nil {
		return loadResult{}, err
	}
	defer it.Stop()
	for i := range n {
		if _, err := it.Next(); err != nil {
			return loadResult{}, fmt.Errorf("ordered consumer: message %d of %d: %w", i, n, err)
		}
	}
	return loadResult{ops: n, wall: time.Since(start), lat: &sample{}}, nil
}

// percentileChart draws p50, p90 and p99 of each named distribution as grouped bars.
func percentileChart(file, title string, names []string, lats []*Latency) Chart {
	c := Chart{File: file, Title: title, YLabel: "µs (log scale)", LogY: true, Bars: true, Categories: names,
		Series: []Series{{Name: "p50"}, {Name: "p90"}, {Name: "p99"}}}
	for _, l := range lats {
		c.Series[0].Y = append(c.Series[0].Y, l.P50)
		c.Series[1].Y = append(c.Series[1].Y, l.P90)
		c.Series[2].Y = append(c.Series[2].Y, l.P99)
	}
	return c
}
