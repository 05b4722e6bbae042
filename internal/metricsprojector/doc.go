// Package metricsprojector is the Prometheus read model of the registry: the fleet by status,
// resource type and category, events by type and status transitions, computed from the event
// stream and exported on /metrics.
//
// # Design, and why
//
// State. The gauges need each resource's status and type, so the projection keeps, per resource,
// exactly that (Resource), plus the fleet counts derived from it, the event and transition
// counters and the stream sequence it stands for (State). A decommissioned resource takes no
// further event, so it is kept as a count per type only: the state grows with the fleet, not
// with every resource ever registered. Step is the rule, a pure function
// (resource, event) -> (resource, effects), tested without NATS; State.Apply folds it over the
// stream. Metrics are exported by a prometheus.Collector that reads the State under the same lock
// the writers take, so a scrape shows exactly the state at one sequence: there are no separate
// counters that could drift from the state or be incremented twice.
//
// Consumer. The live phase is internal/projector.Runner on the durable consumer
// "projector-metrics", with a Sink whose checkpoint is the State's sequence: deliveries at or below
// it are skipped, the rest applied, and the checkpoint moved, all under one lock; the runner acks
// only after that. An event that resourcestore.DecodeMsg rejects is a projector.Poison: the runner
// dead-letters it to stream CIM_DLQ, subject cim.dlq.metrics, with the reason in the Cim-Dlq-Reason
// header, counts it in cim_projector_dead_letters_total and goes on. The runner also exports the
// projector's health (cim_projector_*{projector="metrics"}).
//
// Durability. The state lives in memory; it is made durable by a snapshot (gzip'd gob, with a
// schema version and the sequence it stands for) in the JetStream Object Store bucket
// CIM_PROJECTOR_METRICS, written every N applied events or T seconds and at shutdown. An Object
// Store rather than a KV bucket because a KV value is bounded by the server's max payload (1 MB by
// default), which a fleet of a million resources (about 18 MB) exceeds; an object is chunked, and
// its metadata is published after its chunks, so a crash mid-write leaves the previous snapshot in
// force. On start the projector loads the snapshot (sequence S; one of another schema version, or
// unreadable, is ignored and the state rebuilt from the first event), replays S+1..head, then
// starts the durable consumer right after the replayed state (projector.Runner.RunFrom, a reset
// of the consumer), whatever it had delivered before: deliveries a killed process held are dropped
// with the rest of its state, so they keep nothing back, and every event is applied once: the
// figures after any crash equal those of an uninterrupted run. The replay checks the consumer's ack
// floor after it ends and replays further if the floor is above its checkpoint.
//
// The replay reads with an ordered consumer (ephemeral, not durable, served by the stream leader)
// rather than jetstore.Store.ReadAll: a batch direct get carries headers the server generates for
// every message, so ReadAll reads the same stream several times slower than an ordered consumer
// (BenchmarkReplay reports both; figures in BENCHMARKS.md), which would have kept the replay
// under half the raw read rate whatever the projector did. It also lets the
// replay decode exactly as the consumer phase does (resourcestore.DecodeMsg on headers and
// payload), so a message without the store's headers is one more undecodable event rather than an
// error that stops the read. Exactness is the same: S+1..head, in stream order.
//
// Rejected alternatives: a checkpoint alone in a KV bucket with the counters kept in Prometheus
// (counters restart at zero and the gauges need per-resource state anyway); rebuilding by replay
// from the first event on every start (exact, and simple, but start-up time grows with the
// stream, and a stream of millions of events takes minutes to replay).
//
// Undecodable events during the replay are dead-lettered by the replay itself, on the same
// subject, with the same headers and message id as the runner would use, counted in
// cim_metrics_projector_replay_dead_letters_total, and skipped (the checkpoint passes them; they
// are never counted in the figures). Dead letters are written in stream order, so an undecodable
// event at or below the last sequence already in the dead-letter subject was dead-lettered by an
// earlier run and is skipped without a second copy or count.
//
// Figures. cim_resources{status,resource_type,category} is one gauge rather than three: every
// grouping a dashboard wants is a sum by() over it, and since the category is a function of the
// type the series count is statuses x types (4 x 33), all exported even at zero so that a group
// going to zero shows 0 rather than vanishing. cim_events_total{type} and
// cim_status_transitions_total{from,to} are counters (their rate() is the event rate; the applied
// rate is rate(cim_projector_events_applied_total), so no separate per-second gauge is exported).
// A resource whose registration was dead-lettered is unknown to the gauges (no type to place it),
// but its later events still count.
package metricsprojector
