package faults

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/metricsprojector"
	"github.com/cim-infra/registry/internal/neo4jprojector"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/prometheus/client_golang/prometheus"
)

// ---- metrics

// figures are scraped series keyed by name{label="value",...} (labels sorted), zeros left out.
type figures map[string]float64

func scrapeFigures(g prometheus.Gatherer) (figures, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, err
	}
	families := []string{metricsprojector.MetricResources, metricsprojector.MetricEvents, metricsprojector.MetricTransitions}
	out := figures{}
	for _, mf := range mfs {
		if !slices.Contains(families, mf.GetName()) {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			slices.Sort(labels)
			if v := m.GetGauge().GetValue() + m.GetCounter().GetValue(); v != 0 {
				out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
			}
		}
	}
	return out, nil
}

// expectedFigures computes the figures from the domain's fold of the stream, without any
// projector code: the fleet from the final states, the counters from the events.
func expectedFigures(final map[uuid.UUID]aggregateState, events []jetstore.RecordedEvent) (figures, error) {
	out := figures{}
	for _, a := range final {
		s := a.state
		out[fmt.Sprintf(`%s{category=%q,resource_type=%q,status=%q}`, metricsprojector.MetricResources,
			s.Type().Category(), s.Type(), s.Status())]++
	}
	for _, r := range events {
		e, err := resourcestore.FromStore(r)
		if err != nil {
			return nil, err
		}
		out[fmt.Sprintf(`%s{type=%q}`, metricsprojector.MetricEvents, e.EventType())]++
		if sc, ok := e.(cr.StatusChanged); ok {
			out[fmt.Sprintf(`%s{from=%q,to=%q}`, metricsprojector.MetricTransitions, sc.From, sc.To)]++
		}
	}
	return out, nil
}

func (w *world) checkMetrics(final map[uuid.UUID]aggregateState, events []jetstore.RecordedEvent) {
	w.t.Helper()
	want, err := expectedFigures(final, events)
	if err != nil {
		w.t.Fatal(err)
	}
	got, err := scrapeFigures(w.metrics.reg)
	if err != nil {
		w.t.Fatal(err)
	}
	d := diffMaps(want, got)
	w.t.Logf("metrics read model: %d series compared, %d differences", len(want), len(d))
	if len(d) > 0 {
		w.t.Errorf("metrics differ from the domain's fold of the stream:\n%s", head(d, 30))
	}
}

// ---- graph

// graph is a whole property graph: nodes by "Label:id" with typed property values, and
// relationships as "from -[TYPE]-> to".
type graph struct {
	nodes map[string]map[string]string
	rels  map[string]bool
}

func newGraph() graph { return graph{nodes: map[string]map[string]string{}, rels: map[string]bool{}} }

func propValue(v any) string {
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

func (g graph) set(key string, props map[string]any) {
	n := g.nodes[key]
	if n == nil {
		n = map[string]string{}
		g.nodes[key] = n
	}
	for k, v := range props {
		n[k] = propValue(v)
	}
}

// foldGraph is the graph docs/graph-model.md prescribes for the final states.
func foldGraph(final map[uuid.UUID]aggregateState, checkpoint uint64) graph {
	g := newGraph()
	for id, a := range final {
		s := a.state
		props := map[string]any{
			neo4jprojector.PropID: id.String(), neo4jprojector.PropHostname: s.Hostname().String(),
			neo4jprojector.PropResourceType: s.Type().String(), neo4jprojector.PropCategory: s.Type().Category().String(),
			neo4jprojector.PropStatus: s.Status().String(), neo4jprojector.PropCreatedAt: s.CreatedAt(),
			neo4jprojector.PropUpdatedAt: s.UpdatedAt(), neo4jprojector.PropVersion: int64(a.version),
		}
		for k, v := range map[string]func() (string, bool){
			neo4jprojector.PropManufacturer: s.Manufacturer, neo4jprojector.PropModel: s.Model,
			neo4jprojector.PropSerialNumber: s.SerialNumber, neo4jprojector.PropAssetTag: s.AssetTag,
		} {
			if v, ok := v(); ok {
				props[k] = v
			}
		}
		for k, v := range s.Metadata() {
			props[neo4jprojector.MetadataProperty(k)] = v
		}
		from := neo4jprojector.LabelResource + ":" + id.String()
		g.set(from, props)
		link := func(rel neo4jprojector.Relation, target uuid.UUID) {
			to := rel.TargetLabel + ":" + target.String()
			g.set(to, map[string]any{neo4jprojector.PropID: target.String()})
			g.rels[from+" -["+rel.Type+"]-> "+to] = true
		}
		if v, ok := s.OrganizationID(); ok {
			link(neo4jprojector.BelongsTo, uuid.UUID(v))
		}
		if v, ok := s.LocationID(); ok {
			link(neo4jprojector.LocatedAt, uuid.UUID(v))
		}
		if v, ok := s.OwnerID(); ok {
			link(neo4jprojector.OwnedBy, uuid.UUID(v))
		}
		if v, ok := s.AccountConceptID(); ok {
			link(neo4jprojector.AccountedAs, uuid.UUID(v))
		}
		for _, p := range s.Policies() {
			link(neo4jprojector.UnderPolicy, uuid.UUID(p))
		}
	}
	g.set(neo4jprojector.LabelCheckpoint+":"+neo4jprojector.ProjectorName,
		map[string]any{"name": neo4jprojector.ProjectorName, "sequence": int64(checkpoint)})
	return g
}

// readGraph reads every node and relationship of the database.
func (w *world) readGraph() graph {
	w.t.Helper()
	g := newGraph()
	res, err := neo4j.ExecuteQuery(w.ctx, w.driver, "MATCH (n) RETURN labels(n) AS labels, properties(n) AS props", nil, neo4j.EagerResultTransformer)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, rec := range res.Records {
		labels, _ := rec.Get("labels")
		props, _ := rec.Get("props")
		g.set(nodeKey(labels.([]any), props.(map[string]any)), props.(map[string]any))
	}
	res, err = neo4j.ExecuteQuery(w.ctx, w.driver, `MATCH (a)-[r]->(b)
RETURN labels(a) AS al, properties(a) AS ap, type(r) AS type, properties(r) AS rp, labels(b) AS bl, properties(b) AS bp`,
		nil, neo4j.EagerResultTransformer)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, rec := range res.Records {
		get := func(k string) any { v, _ := rec.Get(k); return v }
		typ := get("type").(string)
		if rp := get("rp").(map[string]any); len(rp) > 0 {
			typ += fmt.Sprintf(" %v", rp)
		}
		from := nodeKey(get("al").([]any), get("ap").(map[string]any))
		to := nodeKey(get("bl").([]any), get("bp").(map[string]any))
		g.rels[from+" -["+typ+"]-> "+to] = true
	}
	return g
}

func nodeKey(labels []any, props map[string]any) string {
	names := make([]string, len(labels))
	for i, l := range labels {
		names[i], _ = l.(string)
	}
	slices.Sort(names)
	id, ok := props[neo4jprojector.PropID].(string)
	if !ok {
		id, _ = props["name"].(string)
	}
	return strings.Join(names, ":") + ":" + id
}

func (w *world) checkGraph(final map[uuid.UUID]aggregateState) {
	w.t.Helper()
	var last uint64
	for _, a := range final {
		last = max(last, a.version)
	}
	want, got := foldGraph(final, last), w.readGraph()
	var d []string
	for _, k := range sortedKeys(want.nodes) {
		g, ok := got.nodes[k]
		if !ok {
			d = append(d, "missing node "+k)
			continue
		}
		if diff := diffMaps(want.nodes[k], g); len(diff) > 0 {
			d = append(d, "node "+k+": "+strings.Join(diff, "; "))
		}
	}
	for _, k := range sortedKeys(got.nodes) {
		if _, ok := want.nodes[k]; !ok {
			d = append(d, "extra node "+k)
		}
	}
	d = append(d, diffMaps(want.rels, got.rels)...)
	w.t.Logf("graph read model: %d nodes and %d relationships compared, %d differences", len(want.nodes), len(want.rels), len(d))
	if len(d) > 0 {
		w.t.Errorf("the graph differs from the domain's fold of the stream:\n%s", head(d, 30))
	}
}

// ---- helpers

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// diffMaps lists the keys whose values differ between want and got.
func diffMaps[V comparable](want, got map[string]V) []string {
	var out []string
	for _, k := range sortedKeys(want) {
		if g, ok := got[k]; !ok {
			out = append(out, fmt.Sprintf("%s missing (want %v)", k, want[k]))
		} else if g != want[k] {
			out = append(out, fmt.Sprintf("%s = %v, want %v", k, g, want[k]))
		}
	}
	for _, k := range sortedKeys(got) {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("%s = %v, not expected", k, got[k]))
		}
	}
	return out
}

func head(lines []string, n int) string {
	if len(lines) > n {
		lines = append(lines[:n:n], fmt.Sprintf("... and %d more", len(lines)-n))
	}
	return strings.Join(lines, "\n")
}
