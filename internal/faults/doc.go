// Package faults is the reliability suite of the registry: an in-process 3-node JetStream
// cluster (R3, sync always), three command service instances and both projectors, driven by
// concurrent clients, who also contend for hostnames and asset tags, while faults are injected
// on a schedule drawn from a seed (stream leader and follower shut down and restarted, a command
// service instance killed right after it sent an append, or the key claims of one, projectors
// killed and restarted, projectors frozen past their ack wait). After recovery the tests check
// that every acknowledged command is in the stream exactly once, that nothing else is, that
// every aggregate's history as the clients saw it is linearizable
// (github.com/anishathalye/porcupine against the domain's Decide and Apply), that both read
// models equal the domain's fold of the final stream, that the key subjects agree with it (every
// key of a live resource held by it, no other key held) and every released key can be claimed
// once, and that no consumer, goroutine or file descriptor was left behind. RELIABILITY.md at the repository root says how to run it.
//
// The non-test files hold the parts the tests are made of: the linearizability model
// (AggregateModel), a dialer that kills a NATS connection right after a publish (KillSwitch),
// and the fault schedule (Schedule). The pausable TCP proxy in front of every node and of Neo4j
// is internal/tcpproxy.
package faults
