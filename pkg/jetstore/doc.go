// Package jetstore is an event store on NATS JetStream for any aggregate type.
//
// Every aggregate has one subject, <prefix>.<aggregate type>.<aggregate id>, in one stream. An
// append is guarded by the server with the expected last sequence of that subject (optimistic
// concurrency) and several events are written as one ADR-50 atomic batch: all or none. Every
// message carries the event's metadata as headers (see the Header* constants) so that consumers
// can route without decoding the payload.
//
// Loads use batch direct get with paging and never create a consumer; reads of the whole stream
// for projectors and replay do the same. Old event versions are upcast on read through
// [Upcaster]s that the domain supplies; consumers apply the same registry ([Upcasters]) to the
// messages they receive. Snapshots live in a JetStream key-value bucket
// ([SnapshotStore]); the caller folds the events, the store only keeps bytes.
//
// With Config.KeyPrefix set, an append may also claim and release unique keys ([Claim],
// [Release]) in the same atomic batch, each key on a subject of its own outside the events'
// prefix, guarded by the server with the expected last sequence of the key's subject; [Store.Key]
// says who holds a key.
//
// The package knows nothing of any particular aggregate: a new aggregate type needs no change here.
package jetstore
