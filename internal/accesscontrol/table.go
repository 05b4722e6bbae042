package accesscontrol

import "slices"

// Account is the NATS account that holds the registry's streams, buckets and users. JetStream
// must be enabled for it.
const Account = "CIM"

// The users of the table.
const (
	UserCommandService   = "command-service"
	UserProjectorMetrics = "projector-metrics"
	UserProjectorNeo4j   = "projector-neo4j"
	UserQueryService     = "query-service"
	UserClient           = "client"
	UserOperator         = "operator"
)

// InboxPrefix is the prefix of the reply subjects of user's connections (natsconn's
// -nats-inbox-prefix): "_INBOX_<user>". Each restricted user may subscribe to its own
// "_INBOX_<user>.>" only, never to "_INBOX.>", so that no user reads the replies meant for
// another (command replies, JetStream API replies, direct-get payloads). User names are single
// tokens, so no prefix is a prefix of another's subjects.
func InboxPrefix(user string) string { return "_INBOX_" + user }

// inbox is the subscribe permission of user's own inboxes.
func inbox(user string) string { return InboxPrefix(user) + ".>" }

// Permissions are one user's NATS permissions. A nil *Permissions means unrestricted.
type Permissions struct {
	PublishAllow   []string
	PublishDeny    []string
	SubscribeAllow []string
	SubscribeDeny  []string
	// AllowResponses lets the user publish one reply to the reply subject of each request it
	// received, within two minutes (nats-server's allow_responses: true).
	AllowResponses bool
}

// User is one row of the table.
type User struct {
	Name string
	// Permissions is nil for a user without restrictions (the operator).
	Permissions *Permissions
}

// The stream, bucket and consumer names the table grants; they are the services' defaults
// (a deployment that renames one must change the table).
const (
	eventStream    = "CIM_EVENTS"
	dlqStream      = "CIM_DLQ"
	resultsBucket  = "CIM_COMMAND_RESULTS"   // command-service -results-bucket
	snapshotBucket = "CIM_COMMAND_SNAPSHOTS" // command-service -snapshot-bucket
	metricsBucket  = "CIM_PROJECTOR_METRICS"
	metricsReplay  = UserProjectorMetrics + "-replay" // projector-metrics' replay consumer
	querySnapshots = "CIM_QUERY_SNAPSHOTS"            // query-service -snapshot-bucket
)

// durables are the consumers on the event stream that belong to one service. The query
// service's ordered consumers have random names, so its grants name any consumer: its deny list
// takes these out.
var durables = []string{UserProjectorMetrics, metricsReplay, UserProjectorNeo4j}

// destructive are the JetStream API calls that remove or rewrite stored data or stream
// configuration: only the operator may make them. Every restricted user denies them, so that
// widening an allow list later cannot grant them.
var destructive = []string{
	"$JS.API.STREAM.DELETE.>",
	"$JS.API.STREAM.MSG.DELETE.>",
	"$JS.API.STREAM.UPDATE.>",
}

// Table returns the permission table, one entry per user, in a fixed order.
func Table() []User {
	return []User{
		{Name: UserCommandService, Permissions: &Permissions{
			PublishAllow: []string{
				// Appends: one subject per aggregate; the acks come back on its inbox.
				"cim.evt.computeresource.*",
				// Claims and releases of unique keys, in the appends' atomic batches.
				"cim.key.hostname.*",
				"cim.key.asset_tag.*",
				// jetstore.EnsureStream: look the stream up, create it when missing.
				"$JS.API.STREAM.INFO." + eventStream,
				"$JS.API.STREAM.CREATE." + eventStream,
				// Loads and queries: batch direct get (the request names the subject in its body).
				"$JS.API.DIRECT.GET." + eventStream,
				// jetstore reads through the stream leader on a replicated stream and after an
				// append conflict (was it our own earlier write?).
				"$JS.API.STREAM.MSG.GET." + eventStream,
				// The results bucket of commands that changed nothing (so that their retries get
				// the same reply): nats.go's CreateKeyValue reads the account info first, then
				// creates the bucket's stream; records are written with Create and read with a
				// direct get.
				"$JS.API.INFO",
				"$JS.API.STREAM.INFO.KV_" + resultsBucket,
				"$JS.API.STREAM.CREATE.KV_" + resultsBucket,
				"$JS.API.DIRECT.GET.KV_" + resultsBucket + ".>",
				"$KV." + resultsBucket + ".>",
				"$JS.API.STREAM.INFO.KV_" + snapshotBucket,
				"$JS.API.STREAM.CREATE.KV_" + snapshotBucket,
				"$JS.API.DIRECT.GET.KV_" + snapshotBucket + ".>",
				"$KV." + snapshotBucket + ".>",
			},
			PublishDeny: append(slices.Clone(destructive),
				"$JS.API.STREAM.PURGE.>",
				"$JS.API.CONSUMER.>",
				"cim.dlq.>",
			),
			SubscribeAllow: []string{
				// The micro service's endpoints, in the queue group cim-command-service.
				"cim.cmd.computeresource.*",
				// Its two queries; list, count and trace are the query service's.
				"cim.qry.computeresource.get",
				"cim.qry.computeresource.history",
				// micro discovery: $SRV.PING|INFO|STATS, .cim-command-service, .cim-command-service.<id>.
				"$SRV.*",
				"$SRV.*.cim-command-service",
				"$SRV.*.cim-command-service.*",
				// Replies to its own requests: appends' acks, JetStream API replies, direct gets.
				inbox(UserCommandService),
			},
			// Replies to commands, queries and discovery requests go to the requester's inbox.
			AllowResponses: true,
		}},
		{Name: UserProjectorMetrics, Permissions: projector(UserProjectorMetrics, "metrics", "cim.evt.>", []string{
			// The start-up replay (snapshot to head) reads with one non-durable consumer of its
			// own fixed name, with the durable's filter (every event, no key message): it deletes
			// a leftover of an earlier run, creates it, pulls from it (acknowledging nothing) and
			// deletes it when done.
			"$JS.API.CONSUMER.CREATE." + eventStream + "." + metricsReplay + ".cim.evt.>",
			"$JS.API.CONSUMER.MSG.NEXT." + eventStream + "." + metricsReplay,
			"$JS.API.CONSUMER.DELETE." + eventStream + "." + metricsReplay,
			// The last dead letter this projector wrote (the stream has no direct get).
			"$JS.API.STREAM.MSG.GET." + dlqStream,
			// The snapshot object store: create it, read (ordered consumer with flow control),
			// write (chunks, then metadata), and purge the chunks of the previous snapshot.
			"$JS.API.STREAM.INFO.OBJ_" + metricsBucket,
			"$JS.API.STREAM.CREATE.OBJ_" + metricsBucket,
			"$JS.API.STREAM.PURGE.OBJ_" + metricsBucket,
			"$JS.API.DIRECT.GET.OBJ_" + metricsBucket + ".>",
			"$JS.API.CONSUMER.CREATE.OBJ_" + metricsBucket + ".>",
			"$JS.API.CONSUMER.DELETE.OBJ_" + metricsBucket + ".>",
			"$JS.FC.OBJ_" + metricsBucket + ".>",
			"$O." + metricsBucket + ".>",
		}, []string{
			"$JS.API.STREAM.PURGE." + eventStream,
			"$JS.API.STREAM.PURGE." + dlqStream,
		})},
		{Name: UserProjectorNeo4j, Permissions: projector(UserProjectorNeo4j, "neo4j", "cim.evt.computeresource.>", nil,
			[]string{"$JS.API.STREAM.PURGE.>"})},
		{Name: UserQueryService, Permissions: queryService()},
		{Name: UserClient, Permissions: &Permissions{
			PublishAllow: []string{
				"cim.cmd.computeresource.*",
				"cim.qry.computeresource.*",
				// nats micro ls / info / stats.
				"$SRV.>",
			},
			// Commands go through the service, which checks them; nothing else.
			PublishDeny:    []string{"cim.evt.>", "cim.key.>", "cim.dlq.>", "$JS.>", "$KV.>", "$O.>"},
			SubscribeAllow: []string{inbox(UserClient)},
		}},
		{Name: UserOperator},
	}
}

// projector returns the permissions of the projector user named durable, like its durable
// consumer on the event stream, with filter subject filter (may be empty), and whose dead letters
// go to cim.dlq.<name>, with extra publish allows and denies.
func projector(durable, name, filter string, allow, deny []string) *Permissions {
	consumer := eventStream + "." + durable
	create := "$JS.API.CONSUMER.CREATE." + consumer
	if filter != "" {
		// A final ">" in a permission also matches the literal ">" token of the filter.
		create += "." + filter
	}
	return &Permissions{
		PublishAllow: append([]string{
			"$JS.API.STREAM.INFO." + eventStream,
			// Create or update its own durable consumer: the API subject carries the name and
			// the filter subject, and the server refuses a request whose body names others.
			create,
			"$JS.API.CONSUMER.MSG.NEXT." + consumer,
			// The runner reads its consumer's state before applying a batch (outstanding older
			// deliveries); projector-metrics also reads its ack floor after the replay.
			"$JS.API.CONSUMER.INFO." + consumer,
			// Reset its consumer: projector-metrics starts it right after its replayed state,
			// projector-neo4j's -rebuild at the first event; both get back at once deliveries a
			// killed process held.
			"$JS.API.CONSUMER.RESET." + consumer,
			"$JS.ACK." + consumer + ".>",
			// Dead letters: create the stream when missing, write its own subject.
			"$JS.API.STREAM.INFO." + dlqStream,
			"$JS.API.STREAM.CREATE." + dlqStream,
			"cim.dlq." + name,
		}, allow...),
		PublishDeny: append(append(slices.Clone(destructive), deny...),
			"cim.evt.>", "cim.key.>", "cim.cmd.>", "cim.qry.>", "$KV.>"),
		SubscribeAllow: []string{inbox(durable)},
	}
}

// queryService returns the query service's permissions. Each instance reads the event stream
// with nats.go's ordered consumers, named "<-consumer-prefix>_<n>" with a random prefix per
// instance: a permission matches whole tokens only, so its grants name any consumer
// ("*") with the filter cim.evt.> in the create subject, and the deny list takes out the
// consumers of the other services, which it could otherwise update, drain or delete.
func queryService() *Permissions {
	anyConsumer := "." + eventStream + ".*"
	var deny []string
	for _, name := range durables {
		consumer := eventStream + "." + name
		deny = append(deny,
			"$JS.API.CONSUMER.CREATE."+consumer+".>",
			"$JS.API.CONSUMER.MSG.NEXT."+consumer,
			"$JS.API.CONSUMER.DELETE."+consumer,
		)
	}
	return &Permissions{
		PublishAllow: []string{
			// The stream's head at start-up.
			"$JS.API.STREAM.INFO." + eventStream,
			// trace reads its events by sequence (direct get; not the last-by-subject form).
			"$JS.API.DIRECT.GET." + eventStream,
			// The ordered consumers: created with the filter cim.evt.> (the API subject carries
			// it), pulled from, and deleted when nats.go replaces one after a gap.
			"$JS.API.CONSUMER.CREATE" + anyConsumer + ".cim.evt.>",
			"$JS.API.CONSUMER.MSG.NEXT" + anyConsumer,
			"$JS.API.CONSUMER.DELETE" + anyConsumer,
			// Dead letters: create the stream when missing, find the last one written, write.
			"$JS.API.STREAM.INFO." + dlqStream,
			"$JS.API.STREAM.CREATE." + dlqStream,
			"$JS.API.STREAM.MSG.GET." + dlqStream,
			"cim.dlq." + UserQueryService,
			// The model's snapshot, an object store: create it, read (ordered consumer with flow
			// control), write (chunks, then metadata), and purge the previous snapshot's chunks.
			"$JS.API.STREAM.INFO.OBJ_" + querySnapshots,
			"$JS.API.STREAM.CREATE.OBJ_" + querySnapshots,
			"$JS.API.STREAM.PURGE.OBJ_" + querySnapshots,
			"$JS.API.DIRECT.GET.OBJ_" + querySnapshots + ".>",
			"$JS.API.CONSUMER.CREATE.OBJ_" + querySnapshots + ".>",
			"$JS.API.CONSUMER.DELETE.OBJ_" + querySnapshots + ".>",
			"$JS.FC.OBJ_" + querySnapshots + ".>",
			"$O." + querySnapshots + ".>",
		},
		PublishDeny: append(append(slices.Clone(destructive), deny...),
			"$JS.API.STREAM.PURGE."+eventStream,
			"$JS.API.STREAM.PURGE."+dlqStream,
			"cim.evt.>", "cim.key.>", "cim.cmd.>", "cim.qry.>", "$KV.>"),
		SubscribeAllow: []string{
			// The micro service's endpoints, in the queue group cim-query-service.
			"cim.qry.computeresource.list",
			"cim.qry.computeresource.count",
			"cim.qry.computeresource.trace",
			// micro discovery: $SRV.PING|INFO|STATS, .cim-query-service, .cim-query-service.<id>.
			"$SRV.*",
			"$SRV.*.cim-query-service",
			"$SRV.*.cim-query-service.*",
			inbox(UserQueryService),
		},
		// Replies to queries and discovery requests go to the requester's inbox.
		AllowResponses: true,
	}
}

// Lookup returns the table's entry for name.
func Lookup(name string) (User, bool) {
	for _, u := range Table() {
		if u.Name == name {
			return u, true
		}
	}
	return User{}, false
}
