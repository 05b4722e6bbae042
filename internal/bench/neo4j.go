package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cim-infra/registry/internal/neo4jprojector"
	"github.com/cim-infra/registry/internal/projector"
	"github.com/cim-infra/registry/internal/resourcestore"
)

// replayNeo4j measures the graph projector's replay of the whole stream into an empty graph (its
// durable consumer and sink, as the service runs them) against a raw ordered-consumer read run
// just before it. Without a Neo4j URI it returns the reason it was skipped. The graph of the
// projector's labels in that database is emptied before and after: use a scratch database.
func replayNeo4j(ctx context.Context, e *env, js jetstream.JetStream, stream, prefix string, head uint64, ordered func() (loadResult, error)) ([]Figure, string, error) {
	if e.cfg.Neo4jURI == "" {
		return nil, "neo4j projector: no Neo4j configured (-neo4j-uri / NEO4J_URI)", nil
	}
	auth := neo4j.NoAuth()
	if e.cfg.Neo4jUser != "" {
		auth = neo4j.BasicAuth(e.cfg.Neo4jUser, e.cfg.Neo4jPassword, "")
	}
	driver, err := neo4j.NewDriverWithContext(e.cfg.Neo4jURI, auth)
	if err != nil {
		return nil, "", err
	}
	defer driver.Close(context.WithoutCancel(ctx))
	if err := driver.VerifyConnectivity(ctx); err != nil {
		return nil, "", fmt.Errorf("neo4j at %s: %w", e.cfg.Neo4jURI, err)
	}
	db := e.cfg.Neo4jDatabase
	name, dlqPrefix := e.name("neo4j")
	if err := neo4jprojector.EnsureSchema(ctx, driver, db); err != nil {
		return nil, "", err
	}
	if err := neo4jprojector.EmptyGraph(ctx, driver, db, name); err != nil {
		return nil, "", err
	}
	defer func() { _ = neo4jprojector.EmptyGraph(context.WithoutCancel(ctx), driver, db, name) }()

	raw, err := ordered()
	if err != nil {
		return nil, "", err
	}
	sink := neo4jprojector.NewSink(driver, neo4jprojector.SinkConfig{Name: name, Database: db}, zerolog.Nop())
	runner, err := projector.New(js, sink, projector.Config{
		Name:          name,
		Stream:        stream,
		FilterSubject: prefix + "." + resourcestore.AggregateType + ".>",
		BatchSize:     neo4jprojector.DefaultBatchSize,
		FetchWait:     200 * time.Millisecond,
		DeadLetter:    projector.DeadLetterConfig{Stream: name + "_DLQ", SubjectPrefix: dlqPrefix},
	}, zerolog.Nop(), projector.NewMetrics(prometheus.NewRegistry(), name))
	if err != nil {
		return nil, "", err
	}
	defer dropStream(js, name+"_DLQ")
	wall, err := runUntil(ctx, runner.Run, func(ctx context.Context) (bool, error) {
		seq, err := sink.Checkpoint(ctx)
		if err != nil {
			return false, nil // no checkpoint written yet: ask again
		}
		return seq >= head, nil
	}, 100*time.Millisecond)
	if err != nil {
		return nil, "", err
	}
	f := rateFigure("neo4j projector: replay into an empty graph", float64(head)/wall.Seconds(), "events/s", "raw ordered-consumer read", raw.rate())
	f.Note = fmt.Sprintf("%d events, batches of %d, one write transaction per batch", head, neo4jprojector.DefaultBatchSize)
	return []Figure{f}, "", nil
}
