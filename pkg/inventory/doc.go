// Package inventory reads and writes inventory files, one resource per row, and imports them
// into the registry through the command service: the format of cimctl import and of
// cimctl list -o csv|jsonl. It imports only the domain and pkg/api, so tools outside this
// module can use it.
//
// Two formats carry the same fields, those of api.Resource:
//
//   - CSV (RFC 4180, comma-separated, UTF-8; a leading byte order mark is skipped): a header
//     row naming the columns (Columns; hostname and resource_type are required, the others
//     optional, in any order; an unknown or repeated column refuses the file), then one row per
//     resource. The policies cell holds policy ids separated by ';'. The metadata cell holds
//     key=value entries separated by ';': a key never holds '=', ';' or '\', and in a value
//     "\;" stands for ';' and "\\" for '\' (EncodeMetadata, DecodeMetadata). An empty cell is
//     a value not given.
//   - JSON lines: one JSON object per line with the fields of api.Resource (policies an array,
//     metadata an object); an unknown or repeated field refuses the row; blank lines are
//     skipped.
//
// The columns created_at, updated_at and version are what an export writes; an import checks
// their form and ignores them (the registry sets them). category, when given, must be the
// resource type's. Every other value is checked by the domain's rules when the row is read, so
// a bad value is a *RowError naming its line and column, and reading goes on with the next row.
// Readers hold one row at a time.
//
// A row without id names the resource whose id is derived from its hostname (Row.ResourceID).
// Plan turns a row into the commands that bring its resource from a state to the row's values;
// Import sends them, planning a resource that exists against its state, so that running an
// interrupted import again writes nothing twice and finishes the rest.
package inventory
