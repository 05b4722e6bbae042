// Package api is the wire contract of the command service: subjects, request and reply bodies,
// and error codes, as plain JSON types that any NATS client can produce. Of this module it
// imports only the domain, for its command names and for ResourceOf (the domain imports nothing
// but the standard library and github.com/google/uuid), so that users' tools can depend on it
// alone. subjects.md is the prose version.
package api

import (
	"encoding/json"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
)

// Service identity, as the NATS micro framework announces it ($SRV.PING, $SRV.INFO, $SRV.STATS).
const (
	ServiceName = "cim-command-service"
	// QueueGroup is shared by every instance, so each request reaches exactly one of them.
	QueueGroup = "cim-command-service"
)

// Subject prefixes: a command is sent to CommandPrefix + "." + its name, a query to
// QueryPrefix + "." + its name.
const (
	CommandPrefix = "cim.cmd.computeresource"
	QueryPrefix   = "cim.qry.computeresource"
)

// HeaderDeadline is the request header that carries the time after which the caller no longer
// waits for the reply, in RFC 3339 with optional fractional seconds ("2026-12-07T05:30:00.25Z").
// The command service never starts writing a command's events at or after that time (by its
// own clock): it replies 503 with kind KindDeadlineExceeded and writes nothing. Client sets it
// on every request from its time-out; other clients may set it the same way. A request without
// it has no deadline but the service's own -request-timeout.
const HeaderDeadline = "Cim-Deadline"

// HeaderNewCommandID, with the value "true", says that the sender made up the request's
// command_id for this request and has not sent it before (Client sets it on the first attempt
// of a command whose id it filled in). The service then skips the look-up of an earlier outcome
// of that command id in its results bucket, a round trip to the store. A re-send must not carry
// it: its earlier outcome would not be found, and it would be decided afresh.
const HeaderNewCommandID = "Cim-New-Command-Id"

// Command names: the last token of each command subject. They are the domain's names of its
// commands (computeresource.Command.CommandName), which the command service's digest of a
// request also covers.
const (
	CmdRegister             = cr.CommandRegister
	CmdAssignOrganization   = cr.CommandAssignOrganization
	CmdAssignLocation       = cr.CommandAssignLocation
	CmdAssignOwner          = cr.CommandAssignOwner
	CmdAddPolicy            = cr.CommandAddPolicy
	CmdRemovePolicy         = cr.CommandRemovePolicy
	CmdAssignAccountConcept = cr.CommandAssignAccountConcept
	CmdClearAccountConcept  = cr.CommandClearAccountConcept
	CmdSetHardwareDetails   = cr.CommandSetHardwareDetails
	CmdAssignAssetTag       = cr.CommandAssignAssetTag
	CmdUpdateMetadata       = cr.CommandUpdateMetadata
	CmdChangeStatus         = cr.CommandChangeStatus
)

// Query names: the last token of each query subject.
const (
	QueryGet     = "get"
	QueryHistory = "history"
)

// Commands lists every command name in a stable order.
func Commands() []string {
	return []string{CmdRegister, CmdAssignOrganization, CmdAssignLocation, CmdAssignOwner, CmdAddPolicy,
		CmdRemovePolicy, CmdAssignAccountConcept, CmdClearAccountConcept, CmdSetHardwareDetails,
		CmdAssignAssetTag, CmdUpdateMetadata, CmdChangeStatus}
}

// CommandSubject is the subject a command of that name is sent to.
func CommandSubject(name string) string { return CommandPrefix + "." + name }

// QuerySubject is the subject a query of that name is sent to.
func QuerySubject(name string) string { return QueryPrefix + "." + name }

// Envelope holds the fields every command accepts. All are optional: the service fills in a
// missing command id (a fresh one: such a request cannot be retried safely), correlation id
// (the command id) and timestamp (its clock on receipt). Send your own command_id to make
// retries safe: a command re-sent with the same id returns the first result and writes nothing.
type Envelope struct {
	CommandID     string     `json:"command_id,omitempty"`
	CorrelationID string     `json:"correlation_id,omitempty"`
	CausationID   string     `json:"causation_id,omitempty"`
	Timestamp     *time.Time `json:"timestamp,omitempty"`
}

// Register registers a resource. AggregateID is optional: without it the service derives one
// from the command id, so a retry of the same command names the same resource.
type Register struct {
	Envelope
	AggregateID  string `json:"aggregate_id,omitempty"`
	Hostname     string `json:"hostname"`
	ResourceType string `json:"resource_type"`
}

// Target names the resource every command but Register acts on.
type Target struct {
	Envelope
	AggregateID string `json:"aggregate_id"`
}

// AssignOrganization assigns the resource to an organization (UUID).
type AssignOrganization struct {
	Target
	OrganizationID string `json:"organization_id"`
}

// AssignLocation assigns the resource to a location (UUID).
type AssignLocation struct {
	Target
	LocationID string `json:"location_id"`
}

// AssignOwner assigns the person (UUID) who owns the resource.
type AssignOwner struct {
	Target
	OwnerID string `json:"owner_id"`
}

// AddPolicy attaches a policy (UUID).
type AddPolicy struct {
	Target
	PolicyID string `json:"policy_id"`
}

// RemovePolicy detaches a policy (UUID).
type RemovePolicy struct {
	Target
	PolicyID string `json:"policy_id"`
}

// AssignAccountConcept links the resource to an account concept (UUID).
type AssignAccountConcept struct {
	Target
	ConceptID string `json:"concept_id"`
}

// ClearAccountConcept removes the account concept link.
type ClearAccountConcept struct {
	Target
}

// SetHardwareDetails sets hardware facts; an omitted field is left as it is.
type SetHardwareDetails struct {
	Target
	Manufacturer *string `json:"manufacturer,omitzero"`
	Model        *string `json:"model,omitzero"`
	SerialNumber *string `json:"serial_number,omitzero"`
}

// AssignAssetTag sets the asset tag.
type AssignAssetTag struct {
	Target
	AssetTag string `json:"asset_tag"`
}

// UpdateMetadata sets one metadata key to a value (an upsert).
type UpdateMetadata struct {
	Target
	Key   string `json:"key"`
	Value string `json:"value"`
}

// ChangeStatus moves the resource to another status: provisioning, active, maintenance or
// decommissioned (terminal).
type ChangeStatus struct {
	Target
	Status string `json:"status"`
}

// CommandReply is the body of a successful command reply.
type CommandReply struct {
	AggregateID string `json:"aggregate_id"`
	// Version is the stream sequence of the resource's last event after the command: pass it
	// as a query's as_of_sequence to read exactly this state.
	Version uint64 `json:"version"`
	// Events lists what the command wrote; empty when the command changed nothing.
	Events []EventRef `json:"events"`
	// Duplicate is true when this command id had already been applied: nothing was written
	// now and the reply describes the first application.
	Duplicate bool `json:"duplicate,omitempty"`
}

// EventRef identifies one stored event.
type EventRef struct {
	Type     string `json:"type"`
	ID       string `json:"id"`
	Sequence uint64 `json:"sequence"`
}

// Get asks for a resource's state: the current one, or as of a stream sequence or a time.
type Get struct {
	AggregateID  string     `json:"aggregate_id"`
	AsOfSequence uint64     `json:"as_of_sequence,omitzero"`
	AsOfTime     *time.Time `json:"as_of_time,omitempty"`
}

// Resource is a resource's state as a query returns it.
type Resource struct {
	ID               string            `json:"id"`
	Hostname         string            `json:"hostname"`
	ResourceType     string            `json:"resource_type"`
	Category         string            `json:"category"`
	Status           string            `json:"status"`
	OrganizationID   string            `json:"organization_id,omitempty"`
	LocationID       string            `json:"location_id,omitempty"`
	OwnerID          string            `json:"owner_id,omitempty"`
	AccountConceptID string            `json:"account_concept_id,omitempty"`
	Policies         []string          `json:"policies"`
	Manufacturer     string            `json:"manufacturer,omitempty"`
	Model            string            `json:"model,omitempty"`
	SerialNumber     string            `json:"serial_number,omitempty"`
	AssetTag         string            `json:"asset_tag,omitempty"`
	Metadata         map[string]string `json:"metadata"`
	CreatedAt        time.Time         `json:"created_at"`
	UpdatedAt        time.Time         `json:"updated_at"`
	// Version is the stream sequence of the last event folded into this state.
	Version uint64 `json:"version"`
}

// History asks for a page of a resource's events after a stream sequence.
type History struct {
	AggregateID   string `json:"aggregate_id"`
	AfterSequence uint64 `json:"after_sequence,omitzero"`
	// Limit is the page size: default 100, at most 1000.
	Limit int `json:"limit,omitzero"`
}

// HistoryPage is one page of a resource's events, oldest first.
type HistoryPage struct {
	AggregateID string         `json:"aggregate_id"`
	Events      []HistoryEvent `json:"events"`
	// More is true when events follow; ask again with AfterSequence = NextAfter.
	More      bool   `json:"more"`
	NextAfter uint64 `json:"next_after,omitempty"`
}

// HistoryEvent is one stored event, upcast to its current schema version.
type HistoryEvent struct {
	Sequence      uint64          `json:"sequence"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	ID            string          `json:"id"`
	CommandID     string          `json:"command_id,omitempty"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	StoredAt      time.Time       `json:"stored_at"`
	Data          json.RawMessage `json:"data"`
}
