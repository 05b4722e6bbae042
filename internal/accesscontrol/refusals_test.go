package accesscontrol

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	events = jetstore.DefaultStream
	dlq    = "CIM_DLQ"
)

// A refusal is one action a user must not be able to take: the subject the server refuses
// (a prefix of it), and the action.
type refusal struct {
	what    string
	kind    string // "Publish" or "Subscription"
	subject string
	action  func(ctx context.Context, c *conn) error
}

func publishes(what, subject string, action func(ctx context.Context, c *conn) error) refusal {
	return refusal{what: what, kind: "Publish", subject: subject, action: action}
}

// rawAPI sends a raw JetStream API request.
func rawAPI(subject, body string) func(ctx context.Context, c *conn) error {
	return func(ctx context.Context, c *conn) error {
		_, err := c.nc.RequestWithContext(ctx, subject, []byte(body))
		return err
	}
}

func subscribes(subject string) refusal {
	return refusal{what: "subscribe to " + subject, kind: "Subscription", subject: subject,
		action: func(_ context.Context, c *conn) error {
			_, err := c.nc.SubscribeSync(subject)
			return err
		}}
}

func eventSubject() string { return "cim.evt.computeresource." + uuid.NewString() }

var (
	sendCommand = publishes("send a command", "cim.cmd.computeresource.register", func(ctx context.Context, c *conn) error {
		_, err := c.nc.RequestWithContext(ctx, "cim.cmd.computeresource.register", []byte(`{"hostname":"x.example.com","resource_type":"virtual_machine"}`))
		return err
	})
	publishEvent = publishes("append an event", "cim.evt.computeresource.", func(ctx context.Context, c *conn) error {
		_, err := c.js.Publish(ctx, eventSubject(), []byte(`{}`))
		return err
	})
	deleteEvents = publishes("delete the event stream", "$JS.API.STREAM.DELETE."+events, func(ctx context.Context, c *conn) error {
		return c.js.DeleteStream(ctx, events)
	})
	purgeEvents    = publishes("purge the event stream", "$JS.API.STREAM.PURGE."+events, rawAPI("$JS.API.STREAM.PURGE."+events, `{}`))
	deleteEvent    = publishes("delete an event", "$JS.API.STREAM.MSG.DELETE."+events, rawAPI("$JS.API.STREAM.MSG.DELETE."+events, `{"seq":1}`))
	reconfigEvents = publishes("change the event stream", "$JS.API.STREAM.UPDATE."+events, rawAPI("$JS.API.STREAM.UPDATE."+events, `{}`))
	newConsumer    = publishes("create a consumer", "$JS.API.CONSUMER.CREATE."+events+".intruder", func(ctx context.Context, c *conn) error {
		_, err := c.js.CreateConsumer(ctx, events, jetstream.ConsumerConfig{Durable: "intruder", AckPolicy: jetstream.AckExplicitPolicy})
		return err
	})
	orderedConsumer = publishes("read the events with an ordered consumer", "$JS.API.CONSUMER.CREATE."+events+".", func(ctx context.Context, c *conn) error {
		cons, err := c.js.OrderedConsumer(ctx, events, jetstream.OrderedConsumerConfig{})
		if err != nil {
			return err
		}
		_, err = cons.Next(jetstream.FetchContext(ctx))
		return err
	})
	deleteDLQ = publishes("delete the dead-letter stream", "$JS.API.STREAM.DELETE."+dlq, func(ctx context.Context, c *conn) error {
		return c.js.DeleteStream(ctx, dlq)
	})
	purgeDLQ = publishes("purge the dead-letter stream", "$JS.API.STREAM.PURGE."+dlq, rawAPI("$JS.API.STREAM.PURGE."+dlq, `{}`))
)

// refusals lists, per user, what the table must refuse.
// claimKey writes a key message around the command service: a hostname taken for nobody.
var claimKey = publishes("claim a hostname", "cim.key.hostname.d2ViLTAx", rawAPI("cim.key.hostname.d2ViLTAx", ""))

func refusals() map[string][]refusal {
	projector := []refusal{sendCommand, publishEvent, deleteEvents, purgeEvents, deleteEvent, reconfigEvents,
		newConsumer, orderedConsumer, deleteDLQ, purgeDLQ, subscribes("cim.cmd.>"), subscribes("cim.evt.>"),
		publishes("forge a command result", "$KV.CIM_COMMAND_RESULTS.", rawAPI("$KV.CIM_COMMAND_RESULTS.a.b", `{}`)),
		subscribes("_INBOX.>"), subscribes(inbox(UserCommandService)), subscribes(inbox(UserClient)),
		claimKey,
	}
	return map[string][]refusal{
		UserCommandService: {deleteEvents, purgeEvents, deleteEvent, reconfigEvents, newConsumer, orderedConsumer, deleteDLQ,
			// Reading the replies of others: everyone's, the client's, a projector's.
			subscribes("_INBOX.>"), subscribes(inbox(UserClient)), subscribes(inbox(UserProjectorMetrics)),
			// Answering the query service's queries.
			subscribes("cim.qry.computeresource.list"), subscribes("cim.qry.computeresource.*"),
			publishes("write a dead letter", "cim.dlq.neo4j", rawAPI("cim.dlq.neo4j", `{}`)),
			publishes("delete its results bucket", "$JS.API.STREAM.DELETE.KV_CIM_COMMAND_RESULTS", func(ctx context.Context, c *conn) error {
				return c.js.DeleteKeyValue(ctx, "CIM_COMMAND_RESULTS")
			}),
		},
		UserProjectorMetrics: append(slices.Clone(projector),
			publishes("take over the other projector's consumer", "$JS.API.CONSUMER.CREATE."+events+".projector-neo4j", func(ctx context.Context, c *conn) error {
				_, err := c.js.CreateOrUpdateConsumer(ctx, events, jetstream.ConsumerConfig{Durable: "projector-neo4j", FilterSubject: "cim.evt.computeresource.>"})
				return err
			}),
			publishes("write the other projector's dead letters", "cim.dlq.neo4j", rawAPI("cim.dlq.neo4j", `{}`)),
			subscribes(inbox(UserProjectorNeo4j)),
		),
		UserProjectorNeo4j: append(slices.Clone(projector),
			publishes("delete the other projector's consumer", "$JS.API.CONSUMER.DELETE."+events+".projector-metrics", func(ctx context.Context, c *conn) error {
				return c.js.DeleteConsumer(ctx, events, "projector-metrics")
			}),
			publishes("write to the metrics snapshot bucket", "$O.CIM_PROJECTOR_METRICS.", rawAPI("$O.CIM_PROJECTOR_METRICS.M.x", `{}`)),
			// The metrics snapshot's chunks, read with an ordered consumer, arrive on its inbox.
			subscribes(inbox(UserProjectorMetrics)),
		),
		UserClient: {publishEvent, claimKey, deleteEvents, purgeEvents, deleteEvent, newConsumer, orderedConsumer,
			publishes("call the JetStream API", "$JS.API.INFO", func(ctx context.Context, c *conn) error {
				_, err := c.js.AccountInfo(ctx)
				return err
			}),
			publishes("read the event stream's configuration", "$JS.API.STREAM.INFO."+events, func(ctx context.Context, c *conn) error {
				_, err := c.js.Stream(ctx, events)
				return err
			}),
			publishes("read events around the service", "$JS.API.DIRECT.GET."+events, rawAPI("$JS.API.DIRECT.GET."+events, `{"seq":1}`)),
			publishes("forge a command result", "$KV.CIM_COMMAND_RESULTS.", rawAPI("$KV.CIM_COMMAND_RESULTS.a.b", `{}`)),
			subscribes("cim.evt.>"),
			// Answering commands in the service's place.
			subscribes("cim.cmd.computeresource.register"),
			// Reading the replies of others: everyone's; the command service's (the events it
			// loads with direct gets, which the client may not read itself), as a wildcard and
			// as one reply subject; a projector's.
			subscribes("_INBOX.>"), subscribes(inbox(UserCommandService)),
			subscribes(InboxPrefix(UserCommandService) + ".Jm3rXbR5fXrA1ZvA0kZ6WF.a1b2c3d4"),
			subscribes(inbox(UserProjectorNeo4j)),
		},
	}
}

// checkRefusals makes every forbidden action as each user, then checks that nothing changed and
// that the operator's destructive actions meet the stream's own protections instead.
func (w *world) checkRefusals(t *testing.T) {
	op := w.as[UserOperator]
	before := w.streamState(t, op)
	for user, list := range refusals() {
		for _, r := range list {
			t.Run(user+"/"+r.what, func(t *testing.T) {
				w.as[user].refused(t, w.ctx, r.kind, r.subject, func(ctx context.Context) error { return r.action(ctx, w.as[user]) })
			})
		}
	}
	if after := w.streamState(t, op); after != before {
		t.Errorf("the refused actions changed the streams: before %+v, after %+v", before, after)
	}
	t.Run("operator", func(t *testing.T) { w.checkOperator(t, op) })
}

// streamState is what a refused action could have changed.
type streamState struct {
	events, deadLetters uint64
	consumers           string
}

func (w *world) streamState(t *testing.T, op *conn) streamState {
	t.Helper()
	var st streamState
	for _, name := range []string{events, dlq} {
		s, err := op.js.Stream(w.ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if name == events {
			st.events = s.CachedInfo().State.Msgs
			var names []string
			for n := range s.ConsumerNames(w.ctx).Name() {
				names = append(names, n)
			}
			slices.Sort(names)
			st.consumers = strings.Join(names, ",")
		} else {
			st.deadLetters = s.CachedInfo().State.Msgs
		}
	}
	return st
}

// checkOperator: the operator is unrestricted, so CIM_EVENTS' deny_purge and deny_delete are what
// refuse its purge and message deletion (and the server refuses to lift them); deleting a stream
// is the operator's alone.
func (w *world) checkOperator(t *testing.T, op *conn) {
	ctx := w.ctx
	stream, err := op.js.Stream(ctx, events)
	if err != nil {
		t.Fatal(err)
	}
	requireAPIError(t, "purge "+events, stream.Purge(ctx), server.JSStreamPurgeFailedF)
	// nats.go keeps only the text of this API error ("message delete not permitted").
	if err := stream.DeleteMsg(ctx, 1); !errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) || !strings.Contains(err.Error(), "not permitted") {
		t.Errorf("operator: delete an event of %s: got %v, want the stream's refusal", events, err)
	}
	if _, err := stream.GetMsg(ctx, 1); err != nil {
		t.Errorf("operator: event 1 after the refused deletion: %v", err)
	}
	cfg := stream.CachedInfo().Config
	cfg.DenyPurge, cfg.DenyDelete = false, false
	_, err = op.js.UpdateStream(ctx, cfg)
	requireAPIError(t, "lift deny_purge and deny_delete of "+events, err, server.JSStreamInvalidConfigF)

	scratch, err := op.js.CreateStream(ctx, jetstream.StreamConfig{Name: "SCRATCH", Subjects: []string{"scratch.>"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := op.js.Publish(ctx, "scratch.a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := scratch.Purge(ctx); err != nil {
		t.Errorf("operator: purge of a scratch stream: %v", err)
	}
	if err := op.js.DeleteStream(ctx, "SCRATCH"); err != nil {
		t.Errorf("operator: delete of a scratch stream: %v", err)
	}
	for _, v := range w.log.Violations() {
		if strings.Contains(v, "/user:"+UserOperator+`"`) {
			t.Errorf("the operator was refused: %s", v)
		}
	}
}

func requireAPIError(t *testing.T, what string, err error, want server.ErrorIdentifier) {
	t.Helper()
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		t.Errorf("operator: %s: got %v, want the stream's refusal (error code %d)", what, err, want)
		return
	}
	if uint16(apiErr.ErrorCode) != uint16(want) {
		t.Errorf("operator: %s: error code %d (%s), want %d", what, apiErr.ErrorCode, apiErr.Description, want)
	}
}
