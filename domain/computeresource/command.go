package computeresource

import (
	"time"

	"github.com/google/uuid"
)

// CommandMeta is what every command brings from outside the domain: ids and time. The
// domain never reads a clock or a random source.
type CommandMeta struct {
	// CommandID identifies this command; required. A command retried with the same
	// CommandID against the same state yields byte-identical events (their ids derive
	// from it), which lets the event store de-duplicate the retry.
	CommandID uuid.UUID
	// CorrelationID ties together everything done for one request. Zero means this
	// command starts the flow: its events then carry the CommandID as correlation id.
	CorrelationID uuid.UUID
	// CausationID is the id of the message (event or command) that caused this command.
	// Zero means none: its events then carry the CommandID as causation id.
	CausationID uuid.UUID
	// Timestamp is when the command was accepted; required. It becomes the events' time.
	Timestamp time.Time
}

// Command is one of the 12 command structs below. The interface is sealed: Decide knows
// every implementation.
type Command interface {
	// AggregateID is the id of the resource the command is addressed to.
	AggregateID() uuid.UUID
	// Metadata returns the command's ids and time.
	Metadata() CommandMeta
	// CommandName is the snake_case name of the command ("assign_organization").
	CommandName() string
	isCommand()
}

// Command names, as returned by CommandName. They are the wire names too (pkg/api's Cmd
// constants, the last token of each command subject), so a name never changes.
const (
	CommandRegister             = "register"
	CommandAssignOrganization   = "assign_organization"
	CommandAssignLocation       = "assign_location"
	CommandAssignOwner          = "assign_owner"
	CommandAddPolicy            = "add_policy"
	CommandRemovePolicy         = "remove_policy"
	CommandAssignAccountConcept = "assign_account_concept"
	CommandClearAccountConcept  = "clear_account_concept"
	CommandSetHardwareDetails   = "set_hardware_details"
	CommandAssignAssetTag       = "assign_asset_tag"
	CommandUpdateMetadata       = "update_metadata"
	CommandChangeStatus         = "change_status"
)

// RegisterResource registers a new resource, in status provisioning.
type RegisterResource struct {
	Meta     CommandMeta
	ID       uuid.UUID
	Hostname Hostname
	Type     ResourceType
}

// AssignOrganization sets the organization the resource belongs to.
type AssignOrganization struct {
	Meta           CommandMeta
	ID             uuid.UUID
	OrganizationID OrganizationID
}

// AssignLocation sets where the resource is.
type AssignLocation struct {
	Meta       CommandMeta
	ID         uuid.UUID
	LocationID LocationID
}

// AssignOwner sets the person who owns the resource.
type AssignOwner struct {
	Meta    CommandMeta
	ID      uuid.UUID
	OwnerID PersonID
}

// AddPolicy applies a policy to the resource; the policy must not be applied already.
type AddPolicy struct {
	Meta     CommandMeta
	ID       uuid.UUID
	PolicyID PolicyID
}

// RemovePolicy removes a policy from the resource; the policy must be applied.
type RemovePolicy struct {
	Meta     CommandMeta
	ID       uuid.UUID
	PolicyID PolicyID
}

// AssignAccountConcept sets the account concept the resource is booked against.
type AssignAccountConcept struct {
	Meta      CommandMeta
	ID        uuid.UUID
	ConceptID AccountConceptID
}

// ClearAccountConcept removes the account concept, if any.
type ClearAccountConcept struct {
	Meta CommandMeta
	ID   uuid.UUID
}

// SetHardwareDetails sets some of manufacturer, model and serial number; a nil field is
// left unchanged. Each given value is free text (text.go) of 1-256 characters.
type SetHardwareDetails struct {
	Meta         CommandMeta
	ID           uuid.UUID
	Manufacturer *string
	Model        *string
	SerialNumber *string
}

// AssignAssetTag sets the asset tag: free text (text.go) of 1-64 characters.
type AssignAssetTag struct {
	Meta     CommandMeta
	ID       uuid.UUID
	AssetTag string
}

// UpdateMetadata upserts one metadata entry. Key: 1-128 characters from [A-Za-z0-9._/-];
// value: free text (text.go) of at most 4096 characters, empty allowed.
type UpdateMetadata struct {
	Meta  CommandMeta
	ID    uuid.UUID
	Key   string
	Value string
}

// ChangeStatus moves the resource to another status along the status graph.
type ChangeStatus struct {
	Meta CommandMeta
	ID   uuid.UUID
	To   Status
}

// AggregateID implements Command.
func (c RegisterResource) AggregateID() uuid.UUID { return c.ID }

// AggregateID implements Command.
func (c AssignOrganization) AggregateID() uuid.UUID { return c.ID }

// AggregateID implements Command.
func (c AssignLocation) AggregateID() uuid.UUID { return c.ID }

// AggregateID implements Command.
func (c AssignOwner) AggregateID() uuid.UUID { return c.ID }

// AggregateID implements Command.
func (c AddPolicy) AggregateID() uuid.UUID { return c.ID }

// AggregateID implements Command.
func (c RemovePolicy) AggregateID() uuid.UUID { return c.ID }

// AggregateID implements Command.
func (c AssignAccountConcept) AggregateID() uuid.UUID { return c.ID }

// AggregateID implements Command.
func (c ClearAccountConcept) AggregateID() uuid.UUID { return c.ID }

// AggregateID implements Command.
func (c SetHardwareDetails) AggregateID() uuid.UUID { return c.ID }

// AggregateID implements Command.
func (c AssignAssetTag) AggregateID() uuid.UUID { return c.ID }

// AggregateID implements Command.
func (c UpdateMetadata) AggregateID() uuid.UUID { return c.ID }

// AggregateID implements Command.
func (c ChangeStatus) AggregateID() uuid.UUID { return c.ID }

// Metadata implements Command.
func (c RegisterResource) Metadata() CommandMeta { return c.Meta }

// Metadata implements Command.
func (c AssignOrganization) Metadata() CommandMeta { return c.Meta }

// Metadata implements Command.
func (c AssignLocation) Metadata() CommandMeta { return c.Meta }

// Metadata implements Command.
func (c AssignOwner) Metadata() CommandMeta { return c.Meta }

// Metadata implements Command.
func (c AddPolicy) Metadata() CommandMeta { return c.Meta }

// Metadata implements Command.
func (c RemovePolicy) Metadata() CommandMeta { return c.Meta }

// Metadata implements Command.
func (c AssignAccountConcept) Metadata() CommandMeta { return c.Meta }

// Metadata implements Command.
func (c ClearAccountConcept) Metadata() CommandMeta { return c.Meta }

// Metadata implements Command.
func (c SetHardwareDetails) Metadata() CommandMeta { return c.Meta }

// Metadata implements Command.
func (c AssignAssetTag) Metadata() CommandMeta { return c.Meta }

// Metadata implements Command.
func (c UpdateMetadata) Metadata() CommandMeta { return c.Meta }

// Metadata implements Command.
func (c ChangeStatus) Metadata() CommandMeta { return c.Meta }

// CommandName implements Command.
func (RegisterResource) CommandName() string { return CommandRegister }

// CommandName implements Command.
func (AssignOrganization) CommandName() string { return CommandAssignOrganization }

// CommandName implements Command.
func (AssignLocation) CommandName() string { return CommandAssignLocation }

// CommandName implements Command.
func (AssignOwner) CommandName() string { return CommandAssignOwner }

// CommandName implements Command.
func (AddPolicy) CommandName() string { return CommandAddPolicy }

// CommandName implements Command.
func (RemovePolicy) CommandName() string { return CommandRemovePolicy }

// CommandName implements Command.
func (AssignAccountConcept) CommandName() string { return CommandAssignAccountConcept }

// CommandName implements Command.
func (ClearAccountConcept) CommandName() string { return CommandClearAccountConcept }

// CommandName implements Command.
func (SetHardwareDetails) CommandName() string { return CommandSetHardwareDetails }

// CommandName implements Command.
func (AssignAssetTag) CommandName() string { return CommandAssignAssetTag }

// CommandName implements Command.
func (UpdateMetadata) CommandName() string { return CommandUpdateMetadata }

// CommandName implements Command.
func (ChangeStatus) CommandName() string { return CommandChangeStatus }

func (RegisterResource) isCommand()     {}
func (AssignOrganization) isCommand()   {}
func (AssignLocation) isCommand()       {}
func (AssignOwner) isCommand()          {}
func (AddPolicy) isCommand()            {}
func (RemovePolicy) isCommand()         {}
func (AssignAccountConcept) isCommand() {}
func (ClearAccountConcept) isCommand()  {}
func (SetHardwareDetails) isCommand()   {}
func (AssignAssetTag) isCommand()       {}
func (UpdateMetadata) isCommand()       {}
func (ChangeStatus) isCommand()         {}
