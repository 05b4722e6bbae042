package inventory

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// JSONLReader reads the rows of a JSON lines inventory one at a time: one JSON object per line,
// with the fields of api.Resource (what cimctl list -o jsonl writes). Field names are
// case-sensitive; an unknown or repeated field refuses the row. Blank lines are skipped.
type JSONLReader struct {
	r    *bufio.Reader
	line int
}

// NewJSONLReader returns a reader of r; it reads nothing of r before the first Read. A leading
// UTF-8 byte order mark is skipped.
func NewJSONLReader(r io.Reader) *JSONLReader {
	return &JSONLReader{r: bufio.NewReaderSize(r, 64*1024)}
}

// Read returns the next row, validated (Row.Validate); io.EOF after the last. A line that is
// not a valid row is a *RowError, and the next Read goes on with the line after it; any other
// error (reading r) ends the file.
func (j *JSONLReader) Read() (Row, error) {
	if j.line == 0 {
		if b, err := j.r.Peek(len(utf8BOM)); err == nil && string(b) == utf8BOM {
			_, _ = j.r.Discard(len(utf8BOM))
		}
	}
	for {
		b, err := j.r.ReadBytes('\n')
		if len(b) == 0 && err != nil {
			return Row{}, err // io.EOF, or the reader's error
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return Row{}, err
		}
		j.line++
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			continue
		}
		row := Row{Line: j.line}
		if err := json.Unmarshal(b, &row.Resource, json.RejectUnknownMembers(true)); err != nil {
			return Row{}, &RowError{Line: j.line, Column: jsonField(err), ID: row.ID, Hostname: row.Hostname, Err: jsonReason(err)}
		}
		if err := row.Validate(); err != nil {
			return Row{}, err
		}
		return row, nil
	}
}

// jsonField is the top-level field a decoding error is in, or "".
func jsonField(err error) string {
	var p jsontext.Pointer
	var se *json.SemanticError
	var syn *jsontext.SyntacticError
	switch {
	case errors.As(err, &se):
		p = se.JSONPointer
	case errors.As(err, &syn):
		p = syn.JSONPointer
	}
	for tok := range p.Tokens() {
		return tok
	}
	return ""
}

// jsonReason says what was wrong in the words of the format.
func jsonReason(err error) error {
	switch {
	case errors.Is(err, json.ErrUnknownName):
		return fmt.Errorf("unknown field: %w", err)
	case errors.Is(err, jsontext.ErrDuplicateName):
		return fmt.Errorf("field given twice: %w", err)
	}
	return err
}
