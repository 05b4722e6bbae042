// Package commandservice is the command side of the registry: a NATS micro service
// (api.ServiceName, queue group api.QueueGroup; see discovery.go) with one endpoint per command on
// api.CommandSubject(name) and the queries get and history on api.QuerySubject(name). Every
// instance on the same NATS system shares the load; `nats micro ls|info|stats` see them.
//
// # Requests
//
// Requests are JSON objects decoded strictly (github.com/go-json-experiment/json, the
// encoding/json/v2 design): unknown fields and names in another case, a field given twice,
// invalid UTF-8, wrong JSON types, missing required fields, malformed or nil UUIDs, values out
// of the domain's bounds, bad hostnames, resource types and statuses, malformed JSON, a body
// that is not an object (null included), an empty body and a body over -max-request-bytes are
// refused with code 400 and an api.Error naming the field (Field) and the reason (Kind:
// malformed_json, empty_request, request_too_large, unknown_field, duplicate_field,
// missing_field, invalid_field). The service fills in a missing command_id (a new UUID),
// correlation_id (the command id) and timestamp (its clock, UTC). A timestamp further than
// -max-clock-skew from the service's clock is refused (400, field timestamp); one before the
// resource's last event is moved up to that event's time before deciding, so that event time
// never goes back within a resource. A register without aggregate_id gets
// uuid.NewSHA1(registerNamespace, command id), so its retries name the same resource.
//
// A command may carry its caller's deadline in the header api.HeaderDeadline (RFC 3339): a
// request received after it, or still undecided at it, writes nothing and is answered 503
// deadline_exceeded; the check is made right before every append, so no append starts at or
// after the deadline.
//
// Replies: api.CommandReply on success. On failure the micro error headers
// (Nats-Service-Error-Code, Nats-Service-Error) and an api.Error body: 400 invalid input, 404
// not_registered (commands) or not_found (queries), 409 for the domain's rules
// (already_registered, decommissioned, invalid_transition with details from/to/allowed,
// activation_precondition with details missing, policy_already_added, policy_not_found), for
// a command id re-used for another request (command_id_reused), for a hostname or asset tag
// that another live resource holds (hostname_taken, asset_tag_taken, with details holder_id;
// the store refuses the claim, see keys.go in the domain) and for concurrency conflicts
// that -max-retries attempts did not resolve (concurrency), 503 when the store did not answer
// within -request-timeout (unavailable), the caller's deadline passed (deadline_exceeded), the
// instance is stopping (shutting_down) or already has -max-in-flight requests in progress
// (overloaded); the last three were not processed or wrote nothing. 500 otherwise (internal).
//
// # Processing
//
// An instance serialises the requests on one aggregate (a lock per aggregate) and keeps a
// bounded LRU cache (-cache-size) of aggregates: state, last stream sequence, and the results
// of the commands applied to it (from the Cim-Command-Id header of its events). A command is
// decided against the cached state and appended with that state's sequence as the expected
// last sequence of the aggregate's subject, so the server refuses the append if another
// instance wrote first; then the tail is read (jetstore.After) and the command decided again,
// up to -max-retries times with a random pause. A refusal by the domain, or a command that
// changes nothing, is only reported after a read of the tail in the same request, so that a
// stale cache never refuses a command that another instance has applied.
//
// # Snapshots
//
// An aggregate evicted from the cache, and on shutdown every cached aggregate (within half the
// shutdown time left), is written in the background to the key-value bucket -snapshot-bucket
// (history 1) if it moved past its last snapshot: its state, its last event (sequence and id),
// the command-id index described below, the hashes of the values it held, and the creation time
// of the event stream. A cache miss reads the snapshot (one direct get) instead of the history,
// whose events may be spread over the whole stream (the server then walks every message block in
// between). A command decides on it as on a cached state: the append is conditional on the
// snapshot's sequence, so a stale snapshot conflicts and is refreshed, and a refusal or a
// command that changes nothing on it is only reported after refresh, which first checks that
// the stream holds the snapshot's last event at its sequence (else the whole history is read).
// A query checks the aggregate's last event (jetstore.LastEvent) before answering from it. A
// snapshot of another incarnation of the stream (deleted and created again under the same
// name), of another schema, or corrupt, is ignored. Writes go through four queues of 1,024 (by
// aggregate id, so one aggregate's snapshots are stored in order); a full queue drops the
// snapshot. Snapshots over 512 KB (about 12,000 events) are not written. Outcomes are counted in
// cim_command_service_snapshot_reads_total and _writes_total. -snapshots=false turns all of it
// off; `command-service -prime-snapshots` writes every aggregate's snapshot from the stream (after
// importing a history, or losing the bucket).
//
// # Idempotency: what a re-sent command id gets
//
// Command ids are scoped to an aggregate. For a command re-sent with the command id of an
// earlier attempt on the same aggregate:
//
//   - If the earlier attempt wrote events, the retry writes nothing and gets the original
//     result (the events carrying that command id, their sequences, the version right after
//     them) with Duplicate=true, whenever it comes, on R1 and R3 streams, whichever instance
//     handles it, including when the first reply was lost or the instance that wrote died
//     before replying. The events in the stream are the source of truth: the retry finds the
//     command id in the cached or re-read history. Event ids are derived from the command id
//     (Nats-Msg-Id), so even a retry decided on a stale state is recognised by the store as a
//     write already made (jetstore's Duplicate), and answered from the history.
//   - If the earlier attempt wrote nothing, because it changed nothing or the domain refused it
//     (404 not_registered, 409 other than concurrency, hostname_taken and asset_tag_taken), and the
//     request carried its own command id, its outcome (the result, or the error reply) was recorded
//     in the key-value bucket -results-bucket, under "<aggregate>.<command>", before the reply, for
//     -results-ttl. A retry within that time gets that outcome (a result with Duplicate=true, or
//     the same error) and writes nothing, even if the state has changed so that the command would
//     now write. The bucket is read before the append of every command that carries its own command
//     id and is not in the history. After the TTL the retry is decided afresh, as a new command. On
//     a replicated bucket, a record made by one instance may reach another instance's reads a few
//     milliseconds late; a retry sent within that window to another instance is decided afresh. A
//     command whose id the service made up is never recorded: nobody can re-send it. The bucket is
//     bounded (-results-max-bytes when the service creates it; new records are discarded when
//     full): an outcome that does not fit is replied but not recorded
//     (results_records_total{outcome="bucket_full"}), and its re-send is decided afresh.
//   - If the earlier attempt failed (5xx, or 409 concurrency, hostname_taken or asset_tag_taken),
//     nothing was written or recorded: the retry is decided afresh and may succeed. A 503 means
//     the outcome is unknown; the retry tells (Duplicate=true if the first attempt had in fact been written).
//
// Each outcome is kept with a digest of the request (requestDigest: command, aggregate and
// fields as decoded, not the envelope): on written events in the header HeaderCommandDigest, in
// the bucket's records beside the outcome. A command id re-sent with another request (another
// command, or other values) gets 409 command_id_reused and writes nothing. Checking a written
// command's digest reads its first event, which only re-sends pay.
//
// A cached aggregate therefore keeps every command id of its history, as long as it stays in
// the cache: bounding them would let a late retry write again. The cost is about 110-120 bytes
// of heap per event of the history, state included (BenchmarkAggregateMemory, 10,000 events of
// one command each: 119 B/event for metadata updates with values never repeated, 110 for
// policies added; before the compact layout, 275 and 208), so a cache of -cache-size 10,000
// aggregates of 1,000 events each holds about 1.2 GB. Size -cache-size for the histories.
//
// Attempts of one command id sent concurrently (before either replied) are serialised within
// an instance; across instances at most one of them writes, and each reply describes the one
// write, except that one attempt may report "changed nothing" while the other writes when the
// state changes between their decisions.
//
// # Replies and shutdown
//
// Requests are processed on worker goroutines (kept for the next request), at most
// -max-in-flight at once: a request beyond is answered 503 overloaded at once, without
// queueing, and counted under the outcome "overloaded". The instance speaks the NATS micro
// protocol itself (discovery.go) rather than through micro.AddService, whose statistics only
// see a handler's synchronous part: $SRV.STATS counts every request and every error reply of
// each endpoint (num_errors, last_error "<code>:<message>"), and processing_time runs from the
// request's delivery to its reply.
// Service.Shutdown unsubscribes the endpoints, answers what was already delivered with 503
// shutting_down, and waits for the requests in flight, which reply only after their append was
// acknowledged.
package commandservice
