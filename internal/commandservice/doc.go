// Package commandservice is the command side of the registry: a NATS micro service with one
// endpoint per command and the queries get and history, any number of instances sharing the
// load in one queue group. It decodes requests strictly, decides them with the domain against a
// cached or snapshotted state, and appends the events conditionally on that state's sequence,
// so the stream alone decides which write wins.
//
// What the service promises (request decoding, replies and error kinds, the caller's deadline,
// concurrency, snapshots, idempotency of re-sent command ids, overload and shutdown) is
// described in docs/architecture.md, section "The command service in detail"; the wire contract
// is in package api and subjects.md.
package commandservice
