package neo4jprojector

// The graph model's names (docs/graph-model.md).
const (
	// LabelResource labels the compute resource nodes.
	LabelResource = "ComputeResource"
	// LabelCheckpoint labels the projector's checkpoint node {name, sequence}.
	LabelCheckpoint = "ProjectionCheckpoint"

	PropID           = "id"
	PropHostname     = "hostname"
	PropResourceType = "resource_type"
	PropCategory     = "category"
	PropStatus       = "status"
	PropManufacturer = "manufacturer"
	PropModel        = "model"
	PropSerialNumber = "serial_number"
	PropAssetTag     = "asset_tag"
	PropCreatedAt    = "created_at"
	PropUpdatedAt    = "updated_at"
	PropVersion      = "version"
	// MetadataPrefix prefixes the property that holds each metadata entry: key "rack" is the
	// property `metadata.rack`.
	MetadataPrefix = "metadata."
)

// MetadataProperty is the resource property holding the metadata entry key.
func MetadataProperty(key string) string { return MetadataPrefix + key }

// Relation is a relationship type from a resource to the node of what it refers to.
type Relation struct {
	// Type is the relationship type.
	Type string
	// TargetLabel labels the referred node, which has a unique id.
	TargetLabel string
	// Many is true when a resource may have several relationships of this type (policies);
	// otherwise an assignment replaces the previous one.
	Many bool
}

// The relations of the graph model.
var (
	BelongsTo   = Relation{Type: "BELONGS_TO", TargetLabel: "Organization"}
	LocatedAt   = Relation{Type: "LOCATED_AT", TargetLabel: "Location"}
	OwnedBy     = Relation{Type: "OWNED_BY", TargetLabel: "Person"}
	AccountedAs = Relation{Type: "ACCOUNTED_AS", TargetLabel: "AccountConcept"}
	UnderPolicy = Relation{Type: "UNDER_POLICY", TargetLabel: "Policy", Many: true}
)

// Relations lists every relation, in a fixed order (the order statements run in).
func Relations() []Relation {
	return []Relation{BelongsTo, LocatedAt, OwnedBy, AccountedAs, UnderPolicy}
}

// Labels lists every node label the projector owns (what a rebuild deletes).
func Labels() []string {
	out := []string{LabelResource}
	for _, r := range Relations() {
		out = append(out, r.TargetLabel)
	}
	return append(out, LabelCheckpoint)
}

// Props are node properties: string, int64 or time.Time values.
type Props map[string]any

// Effect is one change to the graph, as data. The sink executes effects; Project produces them.
type Effect interface{ isEffect() }

// CreateResource creates the resource node with its first properties.
type CreateResource struct {
	ID    string
	Props Props
}

// SetProperties sets properties of the resource node (never removes one).
type SetProperties struct {
	ID    string
	Props Props
}

// ReplaceRelationship makes TargetID the only node the resource has a Rel relationship to,
// creating the target node if needed. Only for relations that are not Many.
type ReplaceRelationship struct {
	ID       string
	Rel      Relation
	TargetID string
}

// ClearRelationship removes the resource's Rel relationships.
type ClearRelationship struct {
	ID  string
	Rel Relation
}

// AddRelationship adds a Rel relationship to TargetID (at most one between two nodes),
// creating the target node if needed. Only for Many relations.
type AddRelationship struct {
	ID       string
	Rel      Relation
	TargetID string
}

// RemoveRelationship removes the Rel relationship to TargetID, if any.
type RemoveRelationship struct {
	ID       string
	Rel      Relation
	TargetID string
}

// SetCheckpoint records that every event up to Sequence is applied.
type SetCheckpoint struct {
	Sequence uint64
}

// A referred node (organization, location...) exists while some resource refers to it: when a
// relationship goes, so does its target if nothing else points at it. The graph is so a function
// of the resources' current states.

func (CreateResource) isEffect()      {}
func (SetProperties) isEffect()       {}
func (ReplaceRelationship) isEffect() {}
func (ClearRelationship) isEffect()   {}
func (AddRelationship) isEffect()     {}
func (RemoveRelationship) isEffect()  {}
func (SetCheckpoint) isEffect()       {}
