package neo4jprojector

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

// The statements of the executor. Labels and relationship types cannot be query parameters, so
// the statements of each relation are built once from the fixed Relation table.
const (
	// lockCheckpoint takes the checkpoint's write lock first (Neo4j's documented way to avoid
	// lost updates), so that two replicas writing at once during a fail-over are serialised and
	// the second reads the checkpoint the first committed.
	stmtLockCheckpoint = `MERGE (c:ProjectionCheckpoint {name: $name})
ON CREATE SET c.sequence = 0
SET c._lock = true
RETURN c.sequence AS sequence`
	stmtSaveCheckpoint = `MATCH (c:ProjectionCheckpoint {name: $name})
SET c.sequence = $sequence
REMOVE c._lock`
	stmtVersions = `UNWIND $ids AS id
MATCH (r:ComputeResource {id: id})
RETURN r.id AS id, r.version AS version`
	stmtCreate = `UNWIND $rows AS row
CREATE (r:ComputeResource {id: row.id})
SET r += row.props`
	stmtUpdate = `UNWIND $rows AS row
MATCH (r:ComputeResource {id: row.id})
SET r += row.props`
)

type relationStatements struct {
	// unlink deletes a resource's relationships to any other target than row.target ('' for
	// all), returning the targets left behind.
	unlink string
	// remove deletes the relationship to row.target, returning the target left behind.
	remove string
	// link makes sure the relationship to row.target exists.
	link string
	// release deletes the targets left behind that nothing refers to any more.
	release string
}

var relationStmts = func() map[Relation]relationStatements {
	m := map[Relation]relationStatements{}
	for _, r := range Relations() {
		m[r] = relationStatements{
			unlink: fmt.Sprintf(`UNWIND $rows AS row
MATCH (:ComputeResource {id: row.id})-[old:%s]->(prev:%s)
WHERE row.target = '' OR prev.id <> row.target
DELETE old
RETURN collect(DISTINCT prev.id) AS released`, r.Type, r.TargetLabel),
			remove: fmt.Sprintf(`UNWIND $rows AS row
MATCH (:ComputeResource {id: row.id})-[old:%s]->(prev:%s {id: row.target})
DELETE old
RETURN collect(DISTINCT prev.id) AS released`, r.Type, r.TargetLabel),
			link: fmt.Sprintf(`UNWIND $rows AS row
MATCH (r:ComputeResource {id: row.id})
MERGE (t:%s {id: row.target})
MERGE (r)-[:%s]->(t)`, r.TargetLabel, r.Type),
			release: fmt.Sprintf(`UNWIND $ids AS id
MATCH (n:%s {id: id})
WHERE NOT (n)--()
DELETE n`, r.TargetLabel),
		}
	}
	return m
}()

// lockCheckpoint locks the checkpoint node (creating it at 0) and returns its sequence.
func lockCheckpoint(ctx context.Context, tx neo4j.ExplicitTransaction, name string) (uint64, error) {
	res, err := tx.Run(ctx, stmtLockCheckpoint, map[string]any{"name": name})
	if err != nil {
		return 0, err
	}
	rec, err := res.Single(ctx)
	if err != nil {
		return 0, err
	}
	seq, _, err := neo4j.GetRecordValue[int64](rec, "sequence")
	if err != nil {
		return 0, fmt.Errorf("neo4jprojector: checkpoint %q: %w", name, err)
	}
	return uint64(seq), nil
}

// loadVersions returns the version of those of ids that are in the graph.
func loadVersions(ctx context.Context, tx neo4j.ExplicitTransaction, ids []string) (map[uuid.UUID]uint64, error) {
	out := make(map[uuid.UUID]uint64, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	res, err := tx.Run(ctx, stmtVersions, map[string]any{"ids": ids})
	if err != nil {
		return nil, err
	}
	recs, err := res.Collect(ctx)
	if err != nil {
		return nil, err
	}
	for _, rec := range recs {
		id, _, err := neo4j.GetRecordValue[string](rec, "id")
		if err != nil {
			return nil, err
		}
		version, _, err := neo4j.GetRecordValue[int64](rec, "version")
		if err != nil {
			return nil, fmt.Errorf("neo4jprojector: version of resource %s: %w", id, err)
		}
		u, err := uuid.Parse(id)
		if err != nil {
			return nil, fmt.Errorf("neo4jprojector: resource node id %q: %w", id, err)
		}
		out[u] = uint64(version)
	}
	return out, nil
}

// runPlan executes a plan's statements in tx, then moves the checkpoint: one statement per kind
// of change, at most 3 + 4 per relation in all, whatever the batch's size.
func runPlan(ctx context.Context, tx neo4j.ExplicitTransaction, name string, p Plan) error {
	if err := run(ctx, tx, stmtCreate, resourceRows(p.Creates)); err != nil {
		return err
	}
	if err := run(ctx, tx, stmtUpdate, resourceRows(p.Updates)); err != nil {
		return err
	}
	for _, rc := range p.Links {
		st := relationStmts[rc.Rel]
		var released []any
		for _, step := range []struct {
			stmt string
			rows []LinkRow
		}{{st.unlink, rc.Set}, {st.remove, rc.Remove}} {
			ids, err := collectReleased(ctx, tx, step.stmt, step.rows)
			if err != nil {
				return err
			}
			released = append(released, ids...)
		}
		var links []LinkRow
		for _, row := range append(rc.Set, rc.Add...) {
			if row.TargetID != "" {
				links = append(links, row)
			}
		}
		if err := run(ctx, tx, st.link, linkRows(links)); err != nil {
			return err
		}
		if len(released) > 0 {
			if err := consume(ctx, tx, st.release, map[string]any{"ids": released}); err != nil {
				return err
			}
		}
	}
	return consume(ctx, tx, stmtSaveCheckpoint, map[string]any{"name": name, "sequence": int64(p.Checkpoint)})
}

func run(ctx context.Context, tx neo4j.ExplicitTransaction, stmt string, rows []any) error {
	if len(rows) == 0 {
		return nil
	}
	return consume(ctx, tx, stmt, map[string]any{"rows": rows})
}

func consume(ctx context.Context, tx neo4j.ExplicitTransaction, stmt string, params map[string]any) error {
	res, err := tx.Run(ctx, stmt, params)
	if err != nil {
		return err
	}
	_, err = res.Consume(ctx)
	return err
}

func collectReleased(ctx context.Context, tx neo4j.ExplicitTransaction, stmt string, rows []LinkRow) ([]any, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	res, err := tx.Run(ctx, stmt, map[string]any{"rows": linkRows(rows)})
	if err != nil {
		return nil, err
	}
	rec, err := res.Single(ctx)
	if err != nil {
		return nil, err
	}
	ids, _, err := neo4j.GetRecordValue[[]any](rec, "released")
	return ids, err
}

func resourceRows(rows []ResourceRow) []any {
	out := make([]any, len(rows))
	for i, r := range rows {
		out[i] = map[string]any{"id": r.ID, "props": map[string]any(r.Props)}
	}
	return out
}

func linkRows(rows []LinkRow) []any {
	out := make([]any, len(rows))
	for i, r := range rows {
		out[i] = map[string]any{"id": r.ID, "target": r.TargetID}
	}
	return out
}
