package inventory

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cim-infra/registry/pkg/api"
)

// Columns are the CSV columns, in the order CSVWriter writes them. A file may have any subset
// that includes hostname and resource_type, in any order.
var Columns = []string{"id", "hostname", "resource_type", "category", "status", "organization_id", "location_id",
	"owner_id", "account_concept_id", "policies", "manufacturer", "model", "serial_number", "asset_tag", "metadata",
	"created_at", "updated_at", "version"}

// utf8BOM is what some spreadsheets write before the header; the reader skips it.
const utf8BOM = "\uFEFF"

// ErrHeader is wrapped by the error of a CSV header that cannot be read: unknown, duplicate or
// missing required columns. Nothing of the file is read then.
var ErrHeader = errors.New("inventory: bad CSV header")

// CSVReader reads the rows of a CSV inventory one at a time (RFC 4180, comma-separated, with a
// header row naming the columns); it never holds more than one row.
type CSVReader struct {
	r       *csv.Reader
	columns []string // the file's columns, in its order
}

// NewCSVReader reads the header row of r. A leading UTF-8 byte order mark is skipped.
func NewCSVReader(r io.Reader) (*CSVReader, error) {
	br := bufio.NewReader(r)
	if b, err := br.Peek(len(utf8BOM)); err == nil && string(b) == utf8BOM {
		_, _ = br.Discard(len(utf8BOM))
	}
	cr := csv.NewReader(br)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: the file is empty: want a header row with at least hostname and resource_type", ErrHeader)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHeader, err)
	}
	columns := slices.Clone(header)
	seen := map[string]bool{}
	for i, c := range columns {
		switch {
		case !slices.Contains(Columns, c):
			return nil, fmt.Errorf("%w: line 1, column %d: unknown column %q; the columns are %s", ErrHeader, i+1, c, strings.Join(Columns, ", "))
		case seen[c]:
			return nil, fmt.Errorf("%w: line 1, column %d: column %q is given twice", ErrHeader, i+1, c)
		}
		seen[c] = true
	}
	for _, c := range []string{"hostname", "resource_type"} {
		if !seen[c] {
			return nil, fmt.Errorf("%w: line 1: the required column %q is missing", ErrHeader, c)
		}
	}
	return &CSVReader{r: cr, columns: columns}, nil
}

// Read returns the next row, validated (Row.Validate); io.EOF after the last. A row that cannot
// be read or is invalid is a *RowError, and the next Read goes on with the row after it; any
// other error (reading r) ends the file.
func (c *CSVReader) Read() (Row, error) {
	fields, err := c.r.Read()
	var pe *csv.ParseError
	switch {
	case errors.As(err, &pe) && errors.Is(err, csv.ErrFieldCount):
		return Row{}, &RowError{Line: pe.StartLine, Err: fmt.Errorf("the row has %d fields, the header %d", len(fields), len(c.columns))}
	case errors.As(err, &pe):
		return Row{}, &RowError{Line: pe.StartLine, Err: fmt.Errorf("line %d, byte %d: %w", pe.Line, pe.Column, pe.Err)}
	case err != nil:
		return Row{}, err
	}
	line, _ := c.r.FieldPos(0)
	row := Row{Line: line}
	for i, v := range fields {
		if err := row.set(c.columns[i], v); err != nil {
			return Row{}, &RowError{Line: line, Column: c.columns[i], ID: row.ID, Hostname: row.Hostname, Err: err}
		}
	}
	if err := row.Validate(); err != nil {
		return Row{}, err
	}
	return row, nil
}

// set stores the value of one CSV column into the row.
func (r *Row) set(column, v string) error {
	var err error
	switch column {
	case "id":
		r.ID = v
	case "hostname":
		r.Hostname = v
	case "resource_type":
		r.ResourceType = v
	case "category":
		r.Category = v
	case "status":
		r.Status = v
	case "organization_id":
		r.OrganizationID = v
	case "location_id":
		r.LocationID = v
	case "owner_id":
		r.OwnerID = v
	case "account_concept_id":
		r.AccountConceptID = v
	case "policies":
		r.Policies, err = DecodePolicies(v)
	case "manufacturer":
		r.Manufacturer = v
	case "model":
		r.Model = v
	case "serial_number":
		r.SerialNumber = v
	case "asset_tag":
		r.AssetTag = v
	case "metadata":
		r.Metadata, err = DecodeMetadata(v)
	case "created_at":
		r.CreatedAt, err = parseTime(v)
	case "updated_at":
		r.UpdatedAt, err = parseTime(v)
	case "version":
		if v != "" {
			r.Version, err = strconv.ParseUint(v, 10, 64)
			if err != nil {
				err = fmt.Errorf("%q is not a stream sequence (a whole number)", v)
			}
		}
	}
	return err
}

func parseTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", v)
	}
	return t, nil
}

// DecodePolicies reads the policies cell: policy ids separated by ';', or nothing.
func DecodePolicies(v string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	policies := strings.Split(v, ";")
	if slices.Contains(policies, "") {
		return nil, fmt.Errorf("%q has an empty entry: want policy ids separated by ';'", v)
	}
	return policies, nil
}

// EncodePolicies writes the policies cell: the ids separated by ';'.
func EncodePolicies(policies []string) string { return strings.Join(policies, ";") }

// DecodeMetadata reads the metadata cell: entries key=value separated by ';'. A key never holds
// '=', ';' or '\' (see the domain's metadata keys), so the first '=' of an entry ends its key; in
// the value, "\;" stands for ';' and "\\" for '\', and a '\' before any other character is an
// error. An empty cell has no entries; "k=" is the key k with an empty value.
func DecodeMetadata(v string) (map[string]string, error) {
	if v == "" {
		return nil, nil
	}
	md := map[string]string{}
	var entry strings.Builder
	flush := func() error {
		e := entry.String()
		entry.Reset()
		key, value, ok := strings.Cut(e, "=")
		switch {
		case e == "":
			return fmt.Errorf("%q has an empty entry: want key=value entries separated by ';'", v)
		case !ok:
			return fmt.Errorf("entry %q has no '=': want key=value", e)
		}
		if _, dup := md[key]; dup {
			return fmt.Errorf("key %q is given twice", key)
		}
		md[key] = value
		return nil
	}
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			if i+1 == len(v) || (v[i+1] != ';' && v[i+1] != '\\') {
				return nil, fmt.Errorf("%q: '\\' at byte %d escapes neither ';' nor '\\'", v, i)
			}
			i++
			entry.WriteByte(v[i])
		case ';':
			if err := flush(); err != nil {
				return nil, err
			}
		default:
			entry.WriteByte(v[i])
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return md, nil
}

// EncodeMetadata writes the metadata cell that DecodeMetadata reads back: key=value entries in
// key order, separated by ';', with ';' and '\' in values escaped by '\'.
func EncodeMetadata(md map[string]string) string {
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(md)) {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(k)
		b.WriteByte('=')
		for j := 0; j < len(md[k]); j++ {
			if c := md[k][j]; c == ';' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(md[k][j])
		}
	}
	return b.String()
}

// CSVWriter writes resources as a CSV inventory that CSVReader reads back: the header row of
// Columns, then one row per resource.
type CSVWriter struct {
	w      *csv.Writer
	header bool
}

// NewCSVWriter returns a writer to w; the header is written with the first resource, or by Flush.
func NewCSVWriter(w io.Writer) *CSVWriter { return &CSVWriter{w: csv.NewWriter(w)} }

// Write writes one resource.
func (c *CSVWriter) Write(r api.Resource) error {
	if err := c.writeHeader(); err != nil {
		return err
	}
	return c.w.Write([]string{r.ID, r.Hostname, r.ResourceType, r.Category, r.Status, r.OrganizationID,
		r.LocationID, r.OwnerID, r.AccountConceptID, EncodePolicies(r.Policies), r.Manufacturer, r.Model,
		r.SerialNumber, r.AssetTag, EncodeMetadata(r.Metadata), timeText(r.CreatedAt), timeText(r.UpdatedAt),
		strconv.FormatUint(r.Version, 10)})
}

// Flush writes the header if no resource was written, then what is buffered.
func (c *CSVWriter) Flush() error {
	if err := c.writeHeader(); err != nil {
		return err
	}
	c.w.Flush()
	return c.w.Error()
}

func (c *CSVWriter) writeHeader() error {
	if c.header {
		return nil
	}
	c.header = true
	return c.w.Write(Columns)
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
