package neo4jprojector

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/google/uuid"
)

// graph is a whole property graph in a comparable form: nodes by "Label:id" (the checkpoint by
// "ProjectionCheckpoint:<name>") with typed property values, and relationships as a multiset: the
// number of relationships of each type, with each set of properties, between each two nodes, so
// that a doubled edge shows as a count of 2.
type graph struct {
	nodes map[string]map[string]string
	// copies counts the nodes read under each key, when more than one was.
	copies map[string]int
	rels   map[string]int
}

func newGraph() graph {
	return graph{nodes: map[string]map[string]string{}, copies: map[string]int{}, rels: map[string]int{}}
}

// value renders a property value with its type, so that a string "3" and an integer 3 differ.
func value(v any) string {
	switch v := v.(type) {
	case string:
		return "string:" + v
	case int64:
		return fmt.Sprintf("int:%d", v)
	case time.Time:
		return "time:" + v.UTC().Format(time.RFC3339Nano)
	default:
		return fmt.Sprintf("%T:%v", v, v)
	}
}

func nodeKey(label, id string) string { return label + ":" + id }

func relKey(from, typ, to string) string { return from + " -[" + typ + "]-> " + to }

func (g graph) setProps(key string, props Props) {
	n := g.nodes[key]
	if n == nil {
		n = map[string]string{}
		g.nodes[key] = n
	}
	for k, v := range props {
		n[k] = value(v)
	}
}

// diff lists the differences of got from want (empty when equal).
func diff(want, got graph) []string {
	var out []string
	for _, k := range sortedKeys(want.nodes) {
		g, ok := got.nodes[k]
		if !ok {
			out = append(out, "missing node "+k)
			continue
		}
		w := want.nodes[k]
		for _, p := range sortedKeys(w) {
			if g[p] != w[p] {
				out = append(out, fmt.Sprintf("node %s property %s = %q, want %q", k, p, g[p], w[p]))
			}
		}
		for _, p := range sortedKeys(g) {
			if _, ok := w[p]; !ok {
				out = append(out, fmt.Sprintf("node %s has extra property %s = %q", k, p, g[p]))
			}
		}
	}
	for _, k := range sortedKeys(got.nodes) {
		if _, ok := want.nodes[k]; !ok {
			out = append(out, "extra node "+k)
		}
	}
	for _, k := range sortedKeys(got.copies) {
		if want.copies[k] != got.copies[k] {
			out = append(out, fmt.Sprintf("node %s: %d copies", k, got.copies[k]))
		}
	}
	for _, r := range sortedKeys(want.rels) {
		switch n := got.rels[r]; {
		case n == 0:
			out = append(out, "missing relationship "+r)
		case n != want.rels[r]:
			out = append(out, fmt.Sprintf("relationship %s %d times, want %d", r, n, want.rels[r]))
		}
	}
	for _, r := range sortedKeys(got.rels) {
		if want.rels[r] == 0 {
			out = append(out, fmt.Sprintf("extra relationship %s (%d times)", r, got.rels[r]))
		}
	}
	return out
}

// relationships counts the relationships of g, every copy included.
func (g graph) relationships() int {
	n := 0
	for _, c := range g.rels {
		n += c
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func requireSameGraph(t testing.TB, want, got graph) {
	t.Helper()
	d := diff(want, got)
	if len(d) == 0 {
		return
	}
	if len(d) > 30 {
		d = append(d[:30], fmt.Sprintf("... and %d more", len(d)-30))
	}
	t.Fatalf("graph differs from the domain's fold (%d nodes, %d relationships wanted; %d, %d found):\n%s",
		len(want.nodes), want.relationships(), len(got.nodes), got.relationships(), strings.Join(d, "\n"))
}

// foldGraph is the graph the model in docs/graph-model.md prescribes for the resources' states,
// computed from the domain's fold without any projector code.
func foldGraph(states map[uuid.UUID]cr.State, versions map[uuid.UUID]uint64, checkpoint uint64) graph {
	g := newGraph()
	for id, s := range states {
		props := Props{
			"id":            id.String(),
			"hostname":      s.Hostname().String(),
			"resource_type": s.Type().String(),
			"category":      s.Type().Category().String(),
			"status":        s.Status().String(),
			"created_at":    s.CreatedAt(),
			"updated_at":    s.UpdatedAt(),
			"version":       int64(versions[id]),
		}
		for k, v := range map[string]func() (string, bool){
			"manufacturer": s.Manufacturer, "model": s.Model, "serial_number": s.SerialNumber, "asset_tag": s.AssetTag,
		} {
			if v, ok := v(); ok {
				props[k] = v
			}
		}
		for k, v := range s.Metadata() {
			props["metadata."+k] = v
		}
		from := nodeKey("ComputeResource", id.String())
		g.setProps(from, props)
		link := func(typ, label string, target uuid.UUID) {
			to := nodeKey(label, target.String())
			g.setProps(to, Props{"id": target.String()})
			g.rels[relKey(from, typ, to)] = 1
		}
		if o, ok := s.OrganizationID(); ok {
			link("BELONGS_TO", "Organization", uuid.UUID(o))
		}
		if l, ok := s.LocationID(); ok {
			link("LOCATED_AT", "Location", uuid.UUID(l))
		}
		if p, ok := s.OwnerID(); ok {
			link("OWNED_BY", "Person", uuid.UUID(p))
		}
		if a, ok := s.AccountConceptID(); ok {
			link("ACCOUNTED_AS", "AccountConcept", uuid.UUID(a))
		}
		for _, p := range s.Policies() {
			link("UNDER_POLICY", "Policy", uuid.UUID(p))
		}
	}
	if checkpoint > 0 {
		g.setProps(nodeKey(LabelCheckpoint, "neo4j"), Props{"name": "neo4j", "sequence": int64(checkpoint)})
	}
	return g
}

// memGraph interprets effects and plans in memory, as the model says Neo4j must.
type memGraph struct{ graph }

func (g memGraph) unlinkWhere(from, typ string, keep func(to string) bool) {
	for r := range g.rels {
		prefix := relKey(from, typ, "")
		if to, ok := strings.CutPrefix(r, prefix); ok && !keep(to) {
			delete(g.rels, r)
			g.release(to)
		}
	}
}

// release deletes a referred node that nothing refers to any more.
func (g memGraph) release(to string) {
	for r := range g.rels {
		if strings.HasSuffix(r, "-> "+to) {
			return
		}
	}
	delete(g.nodes, to)
}

func (g memGraph) link(from string, rel Relation, target string) {
	to := nodeKey(rel.TargetLabel, target)
	g.setProps(to, Props{"id": target})
	g.rels[relKey(from, rel.Type, to)] = 1 // MERGE: one relationship of a kind between two nodes
}

func (g memGraph) applyEffect(e Effect) {
	switch e := e.(type) {
	case CreateResource:
		g.setProps(nodeKey(LabelResource, e.ID), Props{"id": e.ID})
		g.setProps(nodeKey(LabelResource, e.ID), e.Props)
	case SetProperties:
		g.setProps(nodeKey(LabelResource, e.ID), e.Props)
	case ReplaceRelationship:
		from := nodeKey(LabelResource, e.ID)
		g.link(from, e.Rel, e.TargetID)
		g.unlinkWhere(from, e.Rel.Type, func(to string) bool { return to == nodeKey(e.Rel.TargetLabel, e.TargetID) })
	case ClearRelationship:
		g.unlinkWhere(nodeKey(LabelResource, e.ID), e.Rel.Type, func(string) bool { return false })
	case AddRelationship:
		g.link(nodeKey(LabelResource, e.ID), e.Rel, e.TargetID)
	case RemoveRelationship:
		to := nodeKey(e.Rel.TargetLabel, e.TargetID)
		if r := relKey(nodeKey(LabelResource, e.ID), e.Rel.Type, to); g.rels[r] > 0 {
			delete(g.rels, r)
			g.release(to)
		}
	case SetCheckpoint:
		g.setProps(nodeKey(LabelCheckpoint, "neo4j"), Props{"name": "neo4j", "sequence": int64(e.Sequence)})
	}
}

// applyPlan follows the executor's statements in their order.
func (g memGraph) applyPlan(p Plan) {
	for _, row := range p.Creates {
		g.applyEffect(CreateResource(row))
	}
	for _, row := range p.Updates {
		g.applyEffect(SetProperties(row))
	}
	for _, rc := range p.Links {
		var released []string
		for _, row := range rc.Set {
			from := nodeKey(LabelResource, row.ID)
			for r := range g.rels {
				to, ok := strings.CutPrefix(r, relKey(from, rc.Rel.Type, ""))
				if ok && (row.TargetID == "" || to != nodeKey(rc.Rel.TargetLabel, row.TargetID)) {
					delete(g.rels, r)
					released = append(released, to)
				}
			}
		}
		for _, row := range rc.Remove {
			to := nodeKey(rc.Rel.TargetLabel, row.TargetID)
			if r := relKey(nodeKey(LabelResource, row.ID), rc.Rel.Type, to); g.rels[r] > 0 {
				delete(g.rels, r)
				released = append(released, to)
			}
		}
		for _, row := range append(slices.Clone(rc.Set), rc.Add...) {
			if row.TargetID != "" {
				g.link(nodeKey(LabelResource, row.ID), rc.Rel, row.TargetID)
			}
		}
		for _, to := range released {
			g.release(to)
		}
	}
	if p.Checkpoint > 0 {
		g.applyEffect(SetCheckpoint{Sequence: p.Checkpoint})
	}
}
