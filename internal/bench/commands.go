package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/commandservice"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/internal/workload"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
)

// lanes partitions the aggregates: each lane is a workload generator over its own resources and
// is driven by one client at a time, so that its commands reach the service in the order the
// generator made them valid, whatever the concurrency.
const lanes = 256

// commandHistory is the average number of events of an aggregate before the command scenarios.
const commandHistory = 5

// cmdBench is a command service running in this process on its own connection, the aggregates
// it serves, and the raw subjects its figures are compared with.
type cmdBench struct {
	svc     *commandservice.Service
	svcNC   *nats.Conn
	nc      *nats.Conn // the clients' connection
	js      jetstream.JetStream
	sc      jetstore.Config
	store   *jetstore.Store
	lanes   []*workload.Generator
	rawLast []uint64 // last sequence of each raw subject
	// coldSubjects are the aggregates' subjects and coldLast their last sequences, for coldRaw
	// (filled on its first call; each subject has one writer).
	coldSubjects []string
	coldLast     []uint64
	aggs         int
	events       int
	round        int
}

// startCommands starts a command service with a fresh stream on t and fills the stream with
// aggregates resources of about eventsPerAggregate events each (see prefill); the cache starts
// cold.
func startCommands(ctx context.Context, e *env, t *target, aggregates, eventsPerAggregate, cacheSize int, layout prefillLayout) (*cmdBench, error) {
	if e.external() {
		if n := serviceInstances(t.url, e); n > 0 {
			return nil, skipf("%d instance(s) of %s already answer on this NATS system; the benchmark's requests would reach them", n, api.ServiceName)
		}
	}
	b := &cmdBench{aggs: aggregates, rawLast: make([]uint64, aggregates)}
	var err error
	if b.svcNC, err = e.connect(ctx, t.url); err != nil {
		return nil, err
	}
	if b.nc, err = e.connect(ctx, t.url); err != nil {
		b.svcNC.Close()
		return nil, err
	}
	if b.js, err = jetstream.New(b.nc, jetstream.WithPublishAsyncMaxPending(e.sz.asyncWindow)); err != nil {
		b.close()
		return nil, err
	}
	stream, prefix := e.name("commands")
	b.sc = jetstore.Config{Stream: stream, SubjectPrefix: prefix, Replicas: t.replicas}
	if err := b.startService(ctx, cacheSize, prometheus.NewRegistry()); err != nil {
		b.close()
		return nil, err
	}
	if err := b.prefill(ctx, aggregates, eventsPerAggregate, layout); err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

// startService starts an instance of the command service on the bench's stream.
func (b *cmdBench) startService(ctx context.Context, cacheSize int, reg prometheus.Registerer) error {
	opts := commandservice.DefaultOptions()
	opts.CacheSize = cacheSize
	opts.ResultsBucket = b.sc.Stream + "_RESULTS"
	opts.SnapshotBucket = b.snapshotBucket()
	opts.RequestTimeout = 30 * time.Second
	svc, err := commandservice.New(ctx, b.svcNC, b.sc, opts, zerolog.Nop(), reg)
	if err != nil {
		return err
	}
	b.svc, b.store = svc, svc.Store()
	return nil
}

// stopService shuts the running instance down.
func (b *cmdBench) stopService() {
	if b.svc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = b.svc.Shutdown(ctx)
	b.svc = nil
}

// prefillLayout says how the prefilled histories lie in the stream.
type prefillLayout int

const (
	// interleaved histories: after the registrations, commands on resources drawn at random,
	// so an aggregate's events are spread over the stream, as in production.
	interleaved prefillLayout = iota
	// contiguous histories: each aggregate's events one after the other.
	contiguous
)

// prefill writes the histories of aggregates resources of about eventsPerAggregate events each
// straight to the stream (async publish), as the service would have written them: a
// registration each, then (eventsPerAggregate-1)·aggregates further commands laid out as layout
// says. It splits the resources into lanes.
func (b *cmdBench) prefill(ctx context.Context, aggregates, eventsPerAggregate int, layout prefillLayout) error {
	var msgs []*nats.Msg
	hs := make([]*history, 0, lanes)
	add := func(evs []jetstore.Event, id uuid.UUID) {
		ref := resourcestore.Ref(id)
		subject, _ := b.store.Subject(ref)
		for _, ev := range evs {
			msgs = append(msgs, eventMsg(subject, ref, ev))
		}
	}
	decide := func(h *history, c cr.Command) error {
		if c == nil {
			return fmt.Errorf("prefill: every resource of a lane is decommissioned")
		}
		evs, err := h.events(c)
		if err != nil {
			return err
		}
		add(evs, c.AggregateID())
		return nil
	}
	for l := range lanes {
		n := aggregates / lanes
		if l < aggregates%lanes {
			n++
		}
		if n == 0 {
			continue
		}
		h := newHistory(uint64(1000+l), n, b.sc.SubjectPrefix)
		h.g.DecommissionWeight = 0 // a lane must never run out of resources that take commands
		for _, id := range h.g.IDs() {
			if err := decide(h, h.g.NextFor(id)); err != nil {
				return err
			}
			for range eventsPerAggregate - 1 {
				if layout != contiguous {
					break
				}
				if c := h.g.NextFor(id); c != nil { // nil: decommissioned, its history ends
					if err := decide(h, c); err != nil {
						return err
					}
				}
			}
		}
		hs = append(hs, h)
		b.lanes = append(b.lanes, h.g)
	}
	if layout == interleaved {
		for i := range (eventsPerAggregate - 1) * aggregates {
			h := hs[i%len(hs)]
			if err := decide(h, h.g.Next()); err != nil {
				return err
			}
		}
	}
	if err := publishAsync(ctx, b.js, len(msgs), func(i int) *nats.Msg { return msgs[i] }); err != nil {
		return fmt.Errorf("prefill %d aggregates: %w", aggregates, err)
	}
	b.events = len(msgs)
	return nil
}

// prime writes every aggregate's snapshot from the stream (commandservice.PrimeSnapshots) and
// reports its rate against a raw ordered-consumer read of the same stream.
func (b *cmdBench) prime(ctx context.Context, e *env, res *ScenarioResult) error {
	if e.cfg.Progress != nil {
		fmt.Fprintf(e.cfg.Progress, "      priming the snapshots of %d aggregates from %d events\n", b.aggs, b.events)
	}
	p, err := commandservice.PrimeSnapshots(ctx, b.js, b.sc, commandservice.PrimeOptions{Bucket: b.snapshotBucket()})
	if err != nil {
		return fmt.Errorf("prime snapshots: %w", err)
	}
	raw, err := orderedRead(ctx, b.js, b.sc.Stream, "", int(p.EventsRead))
	if err != nil {
		return fmt.Errorf("ordered read of the stream: %w", err)
	}
	f := rateFigure(fmt.Sprintf("prime snapshots, %d aggregates", b.aggs), float64(p.EventsRead)/p.Elapsed.Seconds(), "events/s",
		"raw ordered-consumer read of the stream", raw.rate())
	f.Note = fmt.Sprintf("%d snapshots written in %s (one pass: read, fold, %d parallel puts)", p.Written, p.Elapsed.Round(time.Millisecond), 32)
	res.Figures = append(res.Figures, f)
	return nil
}

// coldRaw measures raw publishes with the expected last subject sequence on the aggregates'
// own subjects, each publisher on its share of them, visited in a scattered order.
func (b *cmdBench) coldRaw(ctx context.Context, e *env, clients int) (loadResult, error) {
	if b.coldSubjects == nil {
		lastOf := map[string]uint64{}
		if err := b.store.ReadAll(ctx, 1, func(r jetstore.RecordedEvent) error {
			subject, err := b.store.Subject(r.Aggregate)
			lastOf[subject] = r.Sequence
			return err
		}); err != nil {
			return loadResult{}, err
		}
		for _, id := range b.ids() {
			subject, _ := b.store.Subject(resourcestore.Ref(uuid.MustParse(id)))
			b.coldSubjects = append(b.coldSubjects, subject)
			b.coldLast = append(b.coldLast, lastOf[subject])
		}
	}
	per := max(e.sz.cmdOpsMin/clients, e.sz.cmdOpsPerConn)
	b.round++
	round := b.round
	return concurrent(ctx, clients, per, func(ctx context.Context, w, i int) error {
		owned := (len(b.coldSubjects) - w + clients - 1) / clients
		k := w + ((i*7919)%max(owned, 1))*clients
		subject := b.coldSubjects[k]
		agg := jetstore.AggregateRef{Type: resourcestore.AggregateType, ID: subject[strings.LastIndexByte(subject, '.')+1:]}
		return b.rawPublish(ctx, subject, agg, fmt.Sprintf("cold-%d-%d-%d-%d", clients, round, w, i), &b.coldLast[k])
	})
}

// rawPublish publishes a filler event with the id to subject, expecting *last as the subject's
// last sequence, and sets *last to the new one.
func (b *cmdBench) rawPublish(ctx context.Context, subject string, agg jetstore.AggregateRef, id string, last *uint64) error {
	ack, err := b.js.PublishMsg(ctx, eventMsg(subject, agg, fillerEvent(id)), jetstream.WithExpectLastSequencePerSubject(*last))
	if err != nil {
		return fmt.Errorf("raw publish to %s: %w", subject, err)
	}
	*last = ack.Sequence
	return nil
}

func (b *cmdBench) snapshotBucket() string { return b.sc.Stream + "_SNAPSHOTS" }

func (b *cmdBench) close() {
	b.stopService()
	if b.js != nil && b.sc.Stream != "" {
		dropStream(b.js, b.sc.Stream)
		_ = b.js.DeleteKeyValue(context.Background(), b.sc.Stream+"_RESULTS")
		_ = b.js.DeleteKeyValue(context.Background(), b.snapshotBucket())
	}
	if b.nc != nil {
		b.nc.Close()
	}
	if b.svcNC != nil {
		b.svcNC.Close()
	}
}

// serviceInstances counts the command service instances answering a micro ping within 500 ms.
func serviceInstances(url string, e *env) int {
	nc, err := e.connect(context.Background(), url)
	if err != nil {
		return 0
	}
	defer nc.Close()
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return 0
	}
	defer sub.Unsubscribe()
	subject, _ := micro.ControlSubject(micro.PingVerb, api.ServiceName, "")
	if err := nc.PublishRequest(subject, inbox, nil); err != nil {
		return 0
	}
	var n int
	for {
		if _, err := sub.NextMsg(500 * time.Millisecond); err != nil {
			return n
		}
		n++
	}
}

// request is one pre-encoded command.
type request struct {
	subject string
	body    []byte
}

// commands makes the commands of one measurement: per client, perClient commands drawn from its
// lanes in turn (client w drives lanes w, w+clients, ...).
func (b *cmdBench) commands(clients, perClient int) ([][]request, error) {
	out := make([][]request, clients)
	for w := range clients {
		var mine []*workload.Generator
		for l := w; l < len(b.lanes); l += clients {
			mine = append(mine, b.lanes[l])
		}
		if len(mine) == 0 {
			return nil, fmt.Errorf("%d clients for %d lanes of aggregates: want at least one lane per client", clients, len(b.lanes))
		}
		for i := range perClient {
			c := mine[i%len(mine)].Next()
			if c == nil {
				return nil, fmt.Errorf("lane exhausted: every resource decommissioned")
			}
			subject, body := workload.Request(c)
			data, err := json.Marshal(body)
			if err != nil {
				return nil, err
			}
			out[w] = append(out[w], request{subject: subject, body: data})
		}
	}
	return out, nil
}

// send sends one command and checks that it succeeded.
func (b *cmdBench) send(ctx context.Context, r request) error {
	msg, err := b.nc.RequestWithContext(ctx, r.subject, r.body)
	if err != nil {
		return fmt.Errorf("command %s: %w", r.subject, err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		return fmt.Errorf("command %s refused: %s %s", r.subject, code, msg.Data)
	}
	return nil
}

// warm loads every aggregate into the service's cache.
func (b *cmdBench) warm(ctx context.Context) error { return b.warmIDs(ctx, b.ids()) }

// warmIDs loads the aggregates into the service's cache with get queries.
func (b *cmdBench) warmIDs(ctx context.Context, ids []string) error {
	const workers = 32
	_, err := concurrent(ctx, workers, (len(ids)+workers-1)/workers, func(ctx context.Context, w, i int) error {
		k := w + i*workers
		if k >= len(ids) {
			return nil
		}
		body, _ := json.Marshal(api.Get{AggregateID: ids[k]})
		msg, err := b.nc.RequestWithContext(ctx, api.QuerySubject(api.QueryGet), body)
		if err != nil {
			return err
		}
		if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
			return fmt.Errorf("get %s: %s %s", ids[k], code, msg.Data)
		}
		return nil
	})
	return err
}

// measure runs one measurement at the given concurrency: command round trips through the
// service, alternated with raw publishes expecting the last subject sequence by as many
// publishers over as many subjects as there are aggregates.
func (b *cmdBench) measure(ctx context.Context, e *env, clients, rounds int) (loadResult, loadResult, error) {
	per := max(e.sz.cmdOpsMin/clients, e.sz.cmdOpsPerConn)
	prefix := b.store.Config().SubjectPrefix
	cmd := func() (loadResult, error) {
		reqs, err := b.commands(clients, per)
		if err != nil {
			return loadResult{}, err
		}
		return concurrent(ctx, clients, per, func(ctx context.Context, w, i int) error { return b.send(ctx, reqs[w][i]) })
	}
	raw := func() (loadResult, error) {
		b.round++
		round := b.round
		return concurrent(ctx, clients, per, func(ctx context.Context, w, i int) error {
			// Publisher w owns the subjects w, w+clients, ...: one writer per subject.
			owned := (b.aggs - w + clients - 1) / clients
			k := w + (i%max(owned, 1))*clients
			agg := jetstore.AggregateRef{Type: "rawbench", ID: fmt.Sprintf("a%d", k)}
			return b.rawPublish(ctx, prefix+".rawbench."+agg.ID, agg, fmt.Sprintf("raw-%d-%d-%d-%d", clients, round, w, i), &b.rawLast[k])
		})
	}
	return alternate(rounds, cmd, raw)
}

// runCommands measures command round trips through the command service at every concurrency,
// over each aggregate count, against raw publishes with the expected last subject sequence at
// the same concurrency.
func runCommands(ctx context.Context, e *env, res *ScenarioResult) error {
	t, err := e.single()
	if err != nil {
		return err
	}
	defer t.stop()
	tput := Chart{File: "commands-throughput.svg", Title: "Command round trips by concurrency",
		XLabel: "concurrent clients (log scale)", YLabel: "operations/s", LogX: true}
	var latNames []string
	var lats []*Latency
	for _, aggs := range e.sz.cmdAggregates {
		b, err := startCommands(ctx, e, t, aggs, commandHistory, commandservice.DefaultCacheSize, interleaved)
		if err != nil {
			return err
		}
		// With more aggregates than the cache holds, most commands miss the cache and load
		// their aggregate (spread over the stream): slow, and measured once rather than in
		// alternating rounds.
		rounds, note := 1, fmt.Sprintf("cache of %d: most commands load their aggregate", commandservice.DefaultCacheSize)
		if aggs <= commandservice.DefaultCacheSize {
			if err := b.warm(ctx); err != nil {
				b.close()
				return fmt.Errorf("warm the cache: %w", err)
			}
			rounds, note = e.sz.rounds, "warm cache"
		}
		// Most commands over more aggregates than the cache holds are first visits: they find
		// no snapshot and read the whole history (cold). Then every aggregate's snapshot is
		// primed from the stream, as a service that ran for a while would have them, and the
		// same is measured again (snapshots).
		phases := []string{""}
		primed := map[int]loadResult{} // by clients
		if aggs > commandservice.DefaultCacheSize {
			phases = []string{"cold, no snapshots", "snapshots primed"}
		}
		for _, phase := range phases {
			label, what := "", fmt.Sprintf("command round trip, %d aggregates", aggs)
			if phase == "snapshots primed" {
				if err := b.prime(ctx, e, res); err != nil {
					b.close()
					return err
				}
			}
			if phase != "" {
				label, what = ", "+phase, what+" ("+phase+")"
				note = fmt.Sprintf("cache of %d, %s", commandservice.DefaultCacheSize, phase)
			}
			cmdSeries := Series{Name: fmt.Sprintf("commands, %d aggregates%s", aggs, label)}
			rawSeries := Series{Name: fmt.Sprintf("raw publish, %d subjects", aggs)}
			for _, c := range e.sz.concurrency {
				cmd, raw, err := b.measure(ctx, e, c, rounds)
				if err != nil {
					b.close()
					return fmt.Errorf("%d aggregates, %d clients: %w", aggs, c, err)
				}
				what := fmt.Sprintf("%s, %d clients", what, c)
				limit := fmt.Sprintf("raw publish w/ expected subject seq, %d publishers", c)
				rf, lf := rateFigure(what, cmd.rate(), "ops/s", limit, raw.rate()), latencyFigure(what, cmd.lat, limit, raw.lat)
				rf.Note = fmt.Sprintf("%s; %d commands, %d events per aggregate before", note, cmd.ops, commandHistory)
				res.Figures = append(res.Figures, rf, lf)
				cmdSeries.X, cmdSeries.Y = append(cmdSeries.X, float64(c)), append(cmdSeries.Y, cmd.rate())
				rawSeries.X, rawSeries.Y = append(rawSeries.X, float64(c)), append(rawSeries.Y, raw.rate())
				if aggs == e.sz.cmdAggregates[0] {
					latNames = append(latNames, fmt.Sprintf("command, %d clients", c), fmt.Sprintf("raw, %d publishers", c))
					lats = append(lats, cmd.lat.latency(), raw.lat.latency())
				}
				if phase == "snapshots primed" {
					primed[c] = cmd
				}
			}
			tput.Series = append(tput.Series, cmdSeries)
			if phase != "snapshots primed" {
				tput.Series = append(tput.Series, rawSeries)
			}
		}
		if len(primed) > 0 {
			// The raw publishes above write subjects whose last message is recent; a command on
			// one of many aggregates writes a subject whose last message lies in an old message
			// block, which the server reads whole to check the expected sequence. The same raw
			// publish on the aggregates' own subjects is the limit of that workload (measured
			// last: it writes filler events into the histories).
			coldSeries := Series{Name: fmt.Sprintf("raw publish, the %d aggregates' own subjects", aggs)}
			for _, c := range e.sz.concurrency {
				raw, err := b.coldRaw(ctx, e, c)
				if err != nil {
					b.close()
					return fmt.Errorf("%d aggregates, %d raw publishers on their subjects: %w", aggs, c, err)
				}
				what := fmt.Sprintf("command round trip, %d aggregates (snapshots primed), %d clients", aggs, c)
				limit := fmt.Sprintf("raw publish w/ expected subject seq on the aggregates' own subjects, %d publishers", c)
				rf, lf := rateFigure(what, primed[c].rate(), "ops/s", limit, raw.rate()), latencyFigure(what, primed[c].lat, limit, raw.lat)
				rf.Note = "the same commands as above, against the limit of writing to old aggregates"
				res.Figures = append(res.Figures, rf, lf)
				coldSeries.X, coldSeries.Y = append(coldSeries.X, float64(c)), append(coldSeries.Y, raw.rate())
			}
			tput.Series = append(tput.Series, coldSeries)
		}
		b.close()
	}
	res.Charts = append(res.Charts, tput, percentileChart("commands-latency.svg",
		fmt.Sprintf("Command round trips, %d aggregates: latency percentiles (µs)", e.sz.cmdAggregates[0]), latNames, lats))
	return nil
}
