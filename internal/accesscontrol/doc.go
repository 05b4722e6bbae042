// Package accesscontrol holds the registry's NATS permission table: which subjects each user
// (command-service, projector-metrics, projector-neo4j, query-service, client, operator) may
// publish and subscribe to. It is the one source the rest follows: subjects.md prints it (a test checks that
// the document and this table agree), ServerUsers turns it into nats-server options for an
// embedded server, and ConfigUsers renders it in the shape of a nats-server configuration file
// and of the NATS Helm chart's values (config.merge.accounts.<account>.users), so that
// deploy/k8s/prod/nats-values.yaml can be checked against it.
//
// The table is least privilege, found by running the four services end to end under it (see
// the package's tests): every allowed subject is one a service publishes or subscribes to, and
// each deny list repeats the destructive actions that must stay refused even if an allow list is
// later widened by mistake (in NATS a deny always wins over an allow).
package accesscontrol
