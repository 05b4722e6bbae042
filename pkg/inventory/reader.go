package inventory

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// Formats of an inventory file.
const (
	FormatCSV   = "csv"
	FormatJSONL = "jsonl"
)

// Reader returns the rows of an inventory file one at a time: a validated row, a *RowError for a
// row that is not valid (read on after it), io.EOF at the end, or another error that ends the
// file. CSVReader and JSONLReader implement it.
type Reader interface {
	Read() (Row, error)
}

// FormatOf returns the format a file name's extension stands for: .csv for CSV, .jsonl and
// .ndjson for JSON lines (case ignored).
func FormatOf(name string) (string, bool) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return FormatCSV, true
	case ".jsonl", ".ndjson":
		return FormatJSONL, true
	}
	return "", false
}

// NewReader returns the reader of the format for r; a CSV header is read now.
func NewReader(r io.Reader, format string) (Reader, error) {
	switch format {
	case FormatCSV:
		return NewCSVReader(r)
	case FormatJSONL:
		return NewJSONLReader(r), nil
	}
	return nil, fmt.Errorf("inventory: format %q: want %s or %s", format, FormatCSV, FormatJSONL)
}
