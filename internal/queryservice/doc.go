// Package queryservice is the query side of the registry: a read model of every compute
// resource, built by each instance from the event stream, answering list, count and trace on
// NATS micro (service cim-query-service, every endpoint in the queue group of the same name).
//
// # The model
//
// Every instance builds the whole model itself from CIM_EVENTS and keeps nothing durable of its
// own, so instances scale out by starting more and a lost instance loses nothing. A resource's
// row is the domain's fold of its events (computeresource.Apply, the function the command service
// decides with), so the model equals the fold by construction; the property test checks it
// against the fold of random histories anyway. A row holds the state in the domain's binary
// encoding (State.MarshalBinary), read in place, after a header with the positions of its
// fields, the two in one allocation without pointers (row.go); a batch decodes it back to a
// State before its first event of the row.
// list writes each row's JSON from it (appendJSON); no encoding is kept.
//
// Engine: the model's own tables (index.go) of copy-on-write B-trees (github.com/tidwall/btree):
// the rows by id, one index per sort field and per filter field, each a B-tree of row pointers
// ordered by (the field's value, the row's id), a total order, which is what keeps cursors
// exact. Metadata and policies have B-trees of (row, position) entries, the key and value or
// the policy read from the row at that position; a metadata entry also holds a hash of its key
// and value, which orders the entries first, so that a lookup's descent compares numbers, not
// the bytes of rows scattered in memory. The writer owns one set of trees and changes it in place; each
// commit publishes a copy (O(1): the copies share their nodes, and the writer copies a shared
// node before changing it). So every read is a snapshot (a View) that neither waits for the
// writer nor makes it wait, and a query scanning a million rows never delays the model's
// updates; a page, its total and its as_of_sequence all come from one state; readers never see
// half a batch; a sort field's index gives rows in order (seeks for cursors, prefixes for
// hostname_prefix) with no sort at query time. Why not github.com/hashicorp/go-memdb (Consul's and
// Nomad's): its radix trees keep every index's key bytes per row, several hundred bytes per row
// and index; here an index entry is one pointer, its order computed from the row's values. Beside
// the tables, two structures whose readers need no versioned table: trace's index of the stream
// sequences of each correlation id's events (traceindex.go; a view skips the entries after its
// sequence; trace reads the events themselves from the stream), and q's trigram index (see
// Queries).
//
// Reading the stream: an ordered consumer (nats.go's: not durable, in memory, one replica,
// recreated from the last sequence after a gap) from the model's sequence on, first to the
// head, then the live tail. jetstore's consumer-free ReadAll would spare the consumer, but it
// stops at the first message without the store's headers, where the model must count,
// dead-letter and skip it as the projectors do; and the projectors' measurements put batch direct
// gets 3 to 5 times below an ordered consumer's rate. Events are applied in batches (up to
// -batch-size, and always when the stream has nothing more right now), each one write
// transaction with the model's position. A catch-up from the first event (no snapshot) keeps
// only the rows, in a map by id (the states changed last kept decoded), and builds every index
// once caught up, each sorted once by compact keys, in parallel (Model.StartBulk): nothing is
// served before then. nats.go makes a lost consumer again a few times; past that the instance
// reads again from the model's sequence, and stops promptly whatever the stream's state.
//
// Readiness: an instance joins the queue group, and /readyz passes, only once the model has
// applied the stream's last sequence as it stood when the instance started; a new instance never
// answers from an empty or stale model. Afterwards /readyz fails while the model is more than
// -ready-max-lag events behind (cim_query_model_lag_events).
//
// Snapshot: every -snapshot-interval an instance whose model is newer than the stored snapshot
// writes it (each resource's state in the domain's binary encoding with its version, each
// index's order, and the trace index's entries as fixed-size binary records; S2-compressed gob,
// schema SnapshotSchema) to the Object Store bucket CIM_QUERY_SNAPSHOTS, with the stream's name,
// creation time and sequence in the object's metadata. A new instance loads it, each index in
// the order stored (no sort), the indexes in parallel, and reads the stream from its sequence
// on, instead of from the first event; a snapshot of
// another schema version, of another stream (or one deleted and created again under the same
// name), or ahead of the stream's head is ignored and the model built from the first event.
//
// Events the model cannot decode are counted (cim_query_events_unapplied_total), logged and
// dead-lettered to CIM_DLQ, subject cim.dlq.query-service, by the first instance that meets them
// (an instance skips those at or below the last sequence already there); events of aggregate
// types the model does not know are skipped (cim_query_events_skipped_total). Neither stops the
// model.
//
// # Queries
//
// Every query takes min_sequence (read your writes: the instance waits up to wait_ms, default
// -default-wait, for its model to apply that sequence, then answers 503 "behind" with its
// position). Requests are decoded strictly with github.com/go-json-experiment/json: names match
// exactly, and unknown, case-changed and duplicate names are refused with a 400 naming the key.
//
// list compiles the filter into a predicate and, when a filtered field has an index, the index
// lookups whose rows hold every match (the most selective by a fixed rule: serial number, asset
// tag, hostname, metadata key=value, q, hostname prefix, owner, account concept, policy, location,
// organization, metadata key, model, manufacturer, type, category, status). With a lookup the
// matches are sorted by the order's key; without one, the order's index is walked in order. The
// cursor carries the last row's key (value and id) and a hash of the filter and order; the next
// page starts after that key in whatever state the model is then, so a row that existed at the
// first page and kept its sort value is neither skipped nor repeated.
//
// The free-text q is a substring test, ignoring case, over each of the row's texts (host name,
// asset tag, serial number, model and metadata values), read in place; a q holding a NUL is
// refused. A q of three bytes or more is answered by a trigram index kept beside the tables, a
// compressed bitmap of rows per trigram (roaring): the rows holding every trigram of q are the
// candidates, and the test runs on those only. A row's new trigrams enter the index before its
// batch commits and its lost ones leave after; a view taken before such a removal tests every
// row instead, so the index never hides a row a view holds.
//
// A list reply is written from the rows' encoded states as they are (appendJSON), byte for byte
// what encoding/json writes for the page; no encoding is kept. The rows of a lookup are read
// from memory a chunk at a time before they are tested (walk.go).
package queryservice
