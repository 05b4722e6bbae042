package api

import "time"

// The query service: a read model of every resource, built from the event stream by each of its
// instances, answering list, count and trace on NATS micro. get and history stay with the command
// service (they read the stream itself).
const (
	QueryServiceName = "cim-query-service"
	// QueryServiceQueueGroup is shared by every query service instance.
	QueryServiceQueueGroup = "cim-query-service"
)

// Query names of the query service: the last token of their subjects (QuerySubject).
const (
	QueryList  = "list"
	QueryCount = "count"
	QueryTrace = "trace"
)

// Queries lists the query service's query names in a stable order.
func Queries() []string { return []string{QueryList, QueryCount, QueryTrace} }

// Paging limits of List.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// Consistency is what every query of the query service accepts.
type Consistency struct {
	// MinSequence asks for a model that has applied at least this stream sequence (a command
	// reply's version: read your own writes). The instance waits for it up to WaitMillis, then
	// answers 503 (kind "behind") with its position.
	MinSequence uint64 `json:"min_sequence,omitempty"`
	// WaitMillis bounds that wait in milliseconds: 0 is the service's default (-default-wait),
	// and the service's -max-wait caps it. Keep it below the request's own timeout.
	WaitMillis int64 `json:"wait_ms,omitempty"`
}

// Filter selects resources. Fields left empty select everything; different fields combine with
// AND, the several values of one list field with OR (except Policies and Metadata, where a
// resource must match every entry). Ids are UUIDs; statuses, types and categories take the
// names the commands take.
type Filter struct {
	OrganizationIDs   []string `json:"organization_id,omitempty"`
	LocationIDs       []string `json:"location_id,omitempty"`
	OwnerIDs          []string `json:"owner_id,omitempty"`
	AccountConceptIDs []string `json:"account_concept_id,omitempty"`
	Statuses          []string `json:"status,omitempty"`
	ResourceTypes     []string `json:"resource_type,omitempty"`
	Categories        []string `json:"category,omitempty"`
	// Policies: the resource has every one of these policies.
	Policies []string `json:"policy_id,omitempty"`
	// Hostname matches the host name exactly, HostnamePrefix its beginning, HostnameGlob the
	// whole name against a pattern of path.Match ('*', '?', '[a-z]'); all three ignore case.
	Hostname       string `json:"hostname,omitempty"`
	HostnamePrefix string `json:"hostname_prefix,omitempty"`
	HostnameGlob   string `json:"hostname_glob,omitempty"`
	// AssetTag, Manufacturer, Model and SerialNumber match exactly.
	AssetTag     string `json:"asset_tag,omitempty"`
	Manufacturer string `json:"manufacturer,omitempty"`
	Model        string `json:"model,omitempty"`
	SerialNumber string `json:"serial_number,omitempty"`
	// Metadata entries are "key" (the key is set) or "key=value" (it has that value); the
	// resource matches every entry. A key containing '=' cannot be asked for.
	Metadata []string `json:"metadata,omitempty"`
	// Time ranges: After is inclusive, Before exclusive.
	CreatedAfter  *time.Time `json:"created_after,omitempty"`
	CreatedBefore *time.Time `json:"created_before,omitempty"`
	UpdatedAfter  *time.Time `json:"updated_after,omitempty"`
	UpdatedBefore *time.Time `json:"updated_before,omitempty"`
	// Q is free text: a resource matches when its host name, asset tag, serial number, model or
	// one of its metadata values contains it, ignoring case. It must not hold a NUL character.
	Q string `json:"q,omitempty"`
}

// Sort fields of List.OrderBy; a leading '-' sorts in descending order. Rows with equal values
// are ordered by id, so the order is total and stable.
const (
	OrderHostname       = "hostname"
	OrderCreatedAt      = "created_at"
	OrderUpdatedAt      = "updated_at"
	OrderStatus         = "status"
	OrderResourceType   = "resource_type"
	OrderCategory       = "category"
	OrderOrganizationID = "organization_id"
	OrderLocationID     = "location_id"
	OrderOwnerID        = "owner_id"
	OrderAssetTag       = "asset_tag"
	OrderSerialNumber   = "serial_number"
	OrderManufacturer   = "manufacturer"
	OrderModel          = "model"
	OrderVersion        = "version"
)

// OrderFields lists the fields List can sort by.
func OrderFields() []string {
	return []string{OrderHostname, OrderCreatedAt, OrderUpdatedAt, OrderStatus, OrderResourceType, OrderCategory,
		OrderOrganizationID, OrderLocationID, OrderOwnerID, OrderAssetTag, OrderSerialNumber, OrderManufacturer,
		OrderModel, OrderVersion}
}

// List asks for one page of the resources that match a filter, in a stable order.
type List struct {
	Consistency
	Filter
	// OrderBy is a sort field (OrderFields), "-" in front for descending; default "hostname".
	OrderBy string `json:"order_by,omitempty"`
	// Limit is the page size: default DefaultListLimit, at most MaxListLimit.
	Limit int `json:"limit,omitempty"`
	// Cursor continues from the page that returned it (its NextCursor), with the same filter
	// and order; a cursor stays valid while the model changes: rows that existed at the first
	// page and kept their sort value are neither skipped nor repeated.
	Cursor string `json:"cursor,omitempty"`
}

// ResourcePage is one page of List.
type ResourcePage struct {
	Resources []Resource `json:"resources"`
	// Total counts every resource that matches the filter now, on every page.
	Total int `json:"total"`
	// NextCursor is set when more rows follow: send it as List.Cursor.
	NextCursor string `json:"next_cursor,omitempty"`
	// AsOfSequence is the stream sequence the model had applied when it answered.
	AsOfSequence uint64 `json:"as_of_sequence"`
}

// Count fields of Count.By.
const (
	CountByStatus         = "status"
	CountByResourceType   = "resource_type"
	CountByCategory       = "category"
	CountByOrganizationID = "organization_id"
	CountByLocationID     = "location_id"
)

// CountFields lists the fields Count can group by.
func CountFields() []string {
	return []string{CountByStatus, CountByResourceType, CountByCategory, CountByOrganizationID, CountByLocationID}
}

// Count asks how many resources match a filter, grouped by one field.
type Count struct {
	Consistency
	Filter
	// By is the grouping field (CountFields), required.
	By string `json:"by"`
}

// Counts is the reply to Count.
type Counts struct {
	By string `json:"by"`
	// Groups holds one entry per value with at least one match, by value ("" for resources
	// without an organization or location).
	Groups []CountGroup `json:"groups"`
	// Total is the sum of the groups' counts.
	Total        int    `json:"total"`
	AsOfSequence uint64 `json:"as_of_sequence"`
}

// CountGroup is one value of Counts.
type CountGroup struct {
	Value string `json:"value"`
	Count int    `json:"count"`
}

// Trace asks for every event of one correlation id, across all resources.
type Trace struct {
	Consistency
	CorrelationID string `json:"correlation_id"`
}

// TraceReply lists the events of one correlation id in stream order.
type TraceReply struct {
	CorrelationID string       `json:"correlation_id"`
	Events        []TraceEvent `json:"events"`
	AsOfSequence  uint64       `json:"as_of_sequence"`
}

// TraceEvent is one event of a trace with its causation links: CommandID is the command that
// wrote it, CausationID what caused that command (an earlier command or event id; the command
// itself when nothing else did).
type TraceEvent struct {
	Sequence      uint64    `json:"sequence"`
	Type          string    `json:"type"`
	ID            string    `json:"id"`
	AggregateType string    `json:"aggregate_type"`
	AggregateID   string    `json:"aggregate_id"`
	CommandID     string    `json:"command_id,omitempty"`
	CausationID   string    `json:"causation_id,omitempty"`
	Timestamp     time.Time `json:"timestamp"`
}
