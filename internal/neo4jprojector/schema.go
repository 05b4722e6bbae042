package neo4jprojector

import (
	"context"
	"fmt"
	"strings"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

// SchemaStatements are the constraints and indexes of the graph model. Each is idempotent
// (IF NOT EXISTS), so EnsureSchema runs them at every start.
func SchemaStatements() []string {
	stmts := []string{
		"CREATE CONSTRAINT compute_resource_id IF NOT EXISTS FOR (n:ComputeResource) REQUIRE n.id IS UNIQUE",
		"CREATE CONSTRAINT projection_checkpoint_name IF NOT EXISTS FOR (n:ProjectionCheckpoint) REQUIRE n.name IS UNIQUE",
	}
	for _, r := range Relations() {
		stmts = append(stmts, fmt.Sprintf("CREATE CONSTRAINT %s_id IF NOT EXISTS FOR (n:%s) REQUIRE n.id IS UNIQUE",
			snake(r.TargetLabel), r.TargetLabel))
	}
	for _, p := range []string{PropStatus, PropResourceType, PropHostname, PropCategory} {
		stmts = append(stmts, fmt.Sprintf("CREATE INDEX compute_resource_%s IF NOT EXISTS FOR (n:ComputeResource) ON (n.%s)", p, p))
	}
	return stmts
}

// EnsureSchema creates the constraints and indexes that do not exist yet. Schema changes cannot
// share a transaction with writes, so each runs in its own.
func EnsureSchema(ctx context.Context, driver neo4j.DriverWithContext, database string) error {
	for _, stmt := range SchemaStatements() {
		_, err := neo4j.ExecuteQuery(ctx, driver, stmt, nil, neo4j.EagerResultTransformer,
			neo4j.ExecuteQueryWithDatabase(database), neo4j.ExecuteQueryWithWritersRouting())
		if err != nil {
			return fmt.Errorf("neo4jprojector: schema %q: %w", stmt, err)
		}
	}
	return nil
}

// EmptyGraph deletes the nodes of the projector's labels (Labels()) with their relationships,
// and the checkpoint named name; other nodes of the database stay. It deletes in batches of
// 10,000 nodes, each its own transaction, so a large graph needs no huge transaction.
func EmptyGraph(ctx context.Context, driver neo4j.DriverWithContext, database, name string) error {
	session := driver.NewSession(ctx, neo4j.SessionConfig{DatabaseName: database, AccessMode: neo4j.AccessModeWrite})
	defer session.Close(ctx)
	for _, label := range Labels() {
		query := "MATCH (n:" + label + ") CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
		params := map[string]any(nil)
		if label == LabelCheckpoint {
			query = "MATCH (n:" + label + " {name: $name}) DETACH DELETE n"
			params = map[string]any{"name": name}
		}
		// CALL ... IN TRANSACTIONS runs only in an auto-commit transaction, hence session.Run.
		res, err := session.Run(ctx, query, params)
		if err == nil {
			_, err = res.Consume(ctx)
		}
		if err != nil {
			return fmt.Errorf("neo4jprojector: delete :%s nodes: %w", label, err)
		}
	}
	return nil
}

func snake(label string) string {
	var b strings.Builder
	for i, r := range label {
		if 'A' <= r && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
