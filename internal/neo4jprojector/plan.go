package neo4jprojector

import "maps"

// Plan is the net change of a batch's effects, grouped by kind so that each kind is one UNWIND
// statement. Every change in the model is a "set" of a key to a value — a property of a
// resource, the target of a single relation of a resource, the presence of one policy
// relationship — so the last effect on a key decides its final value, and applying the plan
// leaves the graph exactly as applying the effects one by one in stream order would: the
// per-aggregate order is preserved by construction, not by statement order.
type Plan struct {
	// Creates are the resources registered in the batch, with every property the batch sets.
	Creates []ResourceRow
	// Updates are the other resources whose properties the batch sets.
	Updates []ResourceRow
	// Links are the relationship changes, one entry per relation that changes, in Relations()
	// order.
	Links []RelationChanges
	// Checkpoint is the new checkpoint (0: none, the batch was already applied).
	Checkpoint uint64
}

// ResourceRow is a resource's properties to set.
type ResourceRow struct {
	ID    string
	Props Props
}

// LinkRow is one relationship change of a resource.
type LinkRow struct {
	ID string
	// TargetID is the referred node's id; for a single relation, "" means none.
	TargetID string
}

// RelationChanges are the changes of one relation.
type RelationChanges struct {
	Rel Relation
	// Set holds the final target of single relations (an empty TargetID clears it).
	Set []LinkRow
	// Add and Remove hold the relationships of Many relations that end present or absent.
	Add, Remove []LinkRow
}

// Empty reports whether the plan changes nothing, not even the checkpoint.
func (p Plan) Empty() bool {
	return p.Checkpoint == 0 && len(p.Creates) == 0 && len(p.Updates) == 0 && len(p.Links) == 0
}

type linkKey struct {
	rel        Relation
	id, target string
}

// Compile reduces effects, in stream order, to their net Plan.
func Compile(effects []Effect) Plan {
	var p Plan
	created := map[string]int{}
	updated := map[string]int{}
	single := map[linkKey]int{} // (rel, id) -> index in singles
	many := map[linkKey]int{}   // (rel, id, target) -> index in manys
	var singles []linkKey
	var manys []linkKey
	present := []bool{}
	setProps := func(id string, props Props) {
		if i, ok := created[id]; ok {
			maps.Copy(p.Creates[i].Props, props)
			return
		}
		if i, ok := updated[id]; ok {
			maps.Copy(p.Updates[i].Props, props)
			return
		}
		updated[id] = len(p.Updates)
		p.Updates = append(p.Updates, ResourceRow{ID: id, Props: maps.Clone(props)})
	}
	setSingle := func(rel Relation, id, target string) {
		k := linkKey{rel: rel, id: id}
		if i, ok := single[k]; ok {
			singles[i].target = target
			return
		}
		single[k] = len(singles)
		singles = append(singles, linkKey{rel: rel, id: id, target: target})
	}
	setMany := func(rel Relation, id, target string, on bool) {
		k := linkKey{rel: rel, id: id, target: target}
		if i, ok := many[k]; ok {
			present[i] = on
			return
		}
		many[k] = len(manys)
		manys = append(manys, k)
		present = append(present, on)
	}
	for _, e := range effects {
		switch e := e.(type) {
		case CreateResource:
			created[e.ID] = len(p.Creates)
			p.Creates = append(p.Creates, ResourceRow{ID: e.ID, Props: maps.Clone(e.Props)})
		case SetProperties:
			setProps(e.ID, e.Props)
		case ReplaceRelationship:
			setSingle(e.Rel, e.ID, e.TargetID)
		case ClearRelationship:
			setSingle(e.Rel, e.ID, "")
		case AddRelationship:
			setMany(e.Rel, e.ID, e.TargetID, true)
		case RemoveRelationship:
			setMany(e.Rel, e.ID, e.TargetID, false)
		case SetCheckpoint:
			p.Checkpoint = max(p.Checkpoint, e.Sequence)
		}
	}
	for _, rel := range Relations() {
		rc := RelationChanges{Rel: rel}
		for _, k := range singles {
			if k.rel == rel {
				rc.Set = append(rc.Set, LinkRow{ID: k.id, TargetID: k.target})
			}
		}
		for i, k := range manys {
			if k.rel != rel {
				continue
			}
			if present[i] {
				rc.Add = append(rc.Add, LinkRow{ID: k.id, TargetID: k.target})
			} else {
				rc.Remove = append(rc.Remove, LinkRow{ID: k.id, TargetID: k.target})
			}
		}
		if len(rc.Set)+len(rc.Add)+len(rc.Remove) > 0 {
			p.Links = append(p.Links, rc)
		}
	}
	return p
}
