package inventory_test

import (
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/inventory"
)

const (
	org    = "0b6f2e0a-6d1a-4a55-9a55-1b2f0c1f0a01"
	loc    = "0b6f2e0a-6d1a-4a55-9a55-1b2f0c1f0a02"
	pol1   = "0b6f2e0a-6d1a-4a55-9a55-1b2f0c1f0a03"
	pol2   = "0b6f2e0a-6d1a-4a55-9a55-1b2f0c1f0a04"
	someID = "0b6f2e0a-6d1a-4a55-9a55-1b2f0c1f0a05"
)

// readAll reads every row and every row error of r.
func readAll(t *testing.T, r inventory.Reader) ([]inventory.Row, []*inventory.RowError) {
	t.Helper()
	var rows []inventory.Row
	var bad []*inventory.RowError
	for range 1000 {
		row, err := r.Read()
		var re *inventory.RowError
		switch {
		case errors.Is(err, io.EOF):
			return rows, bad
		case errors.As(err, &re):
			bad = append(bad, re)
		case err != nil:
			t.Fatalf("read: %v", err)
		default:
			rows = append(rows, row)
		}
	}
	t.Fatal("more than 1000 rows")
	return nil, nil
}

func csvRows(t *testing.T, text string) ([]inventory.Row, []*inventory.RowError) {
	t.Helper()
	r, err := inventory.NewCSVReader(strings.NewReader(text))
	if err != nil {
		t.Fatalf("header: %v", err)
	}
	return readAll(t, r)
}

func TestCSVEdgeCases(t *testing.T) {
	t.Parallel()
	text := "\uFEFFhostname,resource_type,metadata,policies,organization_id,status\n" +
		// quotes, commas, '=' and an escaped ';' and '\' in metadata values; canonical forms
		`WEB-01.Example.com.,VM,"note=say ""hi"", then go;path=a\;b\\c;empty=",` + pol2 + ";" + pol1 + "," + strings.ToUpper(org) + ",Active\n" +
		// empty optional fields
		"db-01.example.com,switch,,,,\n" +
		"\n" + // a blank line is skipped
		// a newline inside a quoted metadata value: read as one row, refused by the domain's
		// rule of printable text, with the line the row starts on
		"bad-01.example.com,vm,\"note=two\nlines\",,,\n" +
		"ok-02.example.com,vm,,,,\n"
	rows, bad := csvRows(t, text)
	if len(rows) != 3 || len(bad) != 1 {
		t.Fatalf("rows %+v, errors %v", rows, bad)
	}
	r := rows[0]
	if r.Line != 2 || r.Hostname != "web-01.example.com" || r.ResourceType != "virtual_machine" || r.Category != "compute" ||
		r.Status != "active" || r.OrganizationID != org || !slices.Equal(r.Policies, []string{pol1, pol2}) {
		t.Errorf("row 1 = %+v", r)
	}
	if want := map[string]string{"note": `say "hi", then go`, "path": `a;b\c`, "empty": ""}; !maps.Equal(r.Metadata, want) {
		t.Errorf("metadata = %q, want %q", r.Metadata, want)
	}
	if rows[1].Line != 3 || len(rows[1].Metadata) != 0 || len(rows[1].Policies) != 0 || rows[1].Status != "" || rows[1].ResourceType != "switch" {
		t.Errorf("row 2 = %+v", rows[1])
	}
	if bad[0].Line != 5 || bad[0].Column != "metadata" || !strings.Contains(bad[0].Error(), "line 5, column metadata") {
		t.Errorf("newline in a metadata value: %v (line %d, column %q)", bad[0], bad[0].Line, bad[0].Column)
	}
	if rows[2].Line != 7 {
		t.Errorf("row after the multi-line one starts on line %d, want 7", rows[2].Line)
	}
}

func TestCSVRowErrorsNameLineAndColumn(t *testing.T) {
	t.Parallel()
	text := "id,hostname,resource_type,category,status,policies,metadata,asset_tag,version\n" +
		"not-a-uuid,a.example.com,vm,,,,,,\n" +
		",-bad.example.com,vm,,,,,,\n" +
		",c.example.com,spaceship,,,,,,\n" +
		",d.example.com,vm,network,,,,,\n" +
		",e.example.com,vm,,retired,,,,\n" +
		",f.example.com,vm,,," + pol1 + ";" + pol1 + ",,,\n" +
		",g.example.com,vm,,,,novalue,,\n" +
		",h.example.com,vm,,,,k=v;,,\n" +
		",i.example.com,vm,,,,k=a\\b,,\n" +
		",j.example.com,vm,,,,,,x\n" +
		",k.example.com,vm,,,,,\n" +
		`,"l.example.com,vm,,,,,,` + "\n" +
		",,vm,,,,,,\n"
	want := []struct {
		line   int
		column string
	}{{2, "id"}, {3, "hostname"}, {4, "resource_type"}, {5, "category"}, {6, "status"}, {7, "policies"},
		{8, "metadata"}, {9, "metadata"}, {10, "metadata"}, {11, "version"}, {12, ""}, {13, ""}}
	rows, bad := csvRows(t, text)
	if len(rows) != 0 {
		t.Errorf("accepted rows %+v", rows)
	}
	if len(bad) < len(want) {
		t.Fatalf("%d errors, want at least %d: %v", len(bad), len(want), bad)
	}
	for i, w := range want {
		if bad[i].Line != w.line || bad[i].Column != w.column {
			t.Errorf("error %d: line %d column %q (%v), want line %d column %q", i, bad[i].Line, bad[i].Column, bad[i], w.line, w.column)
		}
		if !errors.Is(bad[i], inventory.ErrInvalidRow) {
			t.Errorf("error %d does not match ErrInvalidRow", i)
		}
	}
}

func TestCSVHeaderRefused(t *testing.T) {
	t.Parallel()
	for name, header := range map[string]string{
		"unknown column":   "hostname,resource_type,colour\n",
		"duplicate column": "hostname,resource_type,hostname\n",
		"missing hostname": "id,resource_type\n",
		"case differs":     "Hostname,resource_type\n",
		"empty file":       "",
	} {
		_, err := inventory.NewCSVReader(strings.NewReader(header))
		if !errors.Is(err, inventory.ErrHeader) {
			t.Errorf("%s: %v, want ErrHeader", name, err)
		}
	}
}

func TestJSONLStrict(t *testing.T) {
	t.Parallel()
	text := `{"hostname":"a.example.com","resource_type":"vm","metadata":{"k":"v;w"},"policies":["` + pol1 + `"]}` + "\n" +
		`{"hostname":"b.example.com","resource_type":"vm","colour":"red"}` + "\n" +
		`{"hostname":"c.example.com","resource_type":"vm","hostname":"d.example.com"}` + "\n" +
		`{"Hostname":"e.example.com","resource_type":"vm"}` + "\n" +
		"\n" +
		`{"hostname":"f.example.com","resource_type":"vm","version":"x"}` + "\n" +
		`not json` + "\n" +
		`{"hostname":"g.example.com","resource_type":"vm","status":"gone"}` + "\n" +
		`{"id":"` + someID + `","hostname":"h.example.com","resource_type":"vm","policies":null,"metadata":null}`
	rows, bad := readAll(t, inventory.NewJSONLReader(strings.NewReader(text)))
	if len(rows) != 2 || rows[0].Metadata["k"] != "v;w" || rows[0].Line != 1 || rows[1].ID != someID || rows[1].Line != 9 {
		t.Fatalf("rows %+v", rows)
	}
	want := []struct {
		line   int
		column string
		text   string
	}{{2, "colour", "unknown field"}, {3, "hostname", "given twice"}, {4, "Hostname", "unknown field"},
		{6, "version", ""}, {7, "", ""}, {8, "status", "not a status"}}
	if len(bad) != len(want) {
		t.Fatalf("errors %v", bad)
	}
	for i, w := range want {
		if bad[i].Line != w.line || bad[i].Column != w.column || !strings.Contains(bad[i].Error(), w.text) {
			t.Errorf("error %d: %v (line %d column %q), want line %d column %q saying %q", i, bad[i], bad[i].Line, bad[i].Column, w.line, w.column, w.text)
		}
	}
}

// TestCSVWriterReadBack: what CSVWriter writes, CSVReader reads back to the same values.
func TestCSVWriterReadBack(t *testing.T) {
	t.Parallel()
	res := []api.Resource{
		{ID: someID, Hostname: "a.example.com", ResourceType: "virtual_machine", Category: "compute", Status: "active",
			OrganizationID: org, LocationID: loc, Policies: []string{pol1, pol2}, Manufacturer: "Dell, Inc.",
			Model: `R650 "xs"`, SerialNumber: "S1", AssetTag: "A;1",
			Metadata: map[string]string{"a": `x\;y=z`, "b": "", "c/d.e": "; ;"}, Version: 7},
		{ID: org, Hostname: "b.example.com", ResourceType: "switch", Category: "network", Status: "provisioning",
			Metadata: map[string]string{}},
	}
	var b strings.Builder
	w := inventory.NewCSVWriter(&b)
	for _, r := range res {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	rows, bad := csvRows(t, b.String())
	if len(bad) > 0 || len(rows) != 2 {
		t.Fatalf("rows %+v errors %v\n%s", rows, bad, b.String())
	}
	for i, r := range rows {
		got, want := r.Resource, res[i]
		if len(want.Metadata) == 0 {
			want.Metadata = nil
		}
		if got.ID != want.ID || got.Hostname != want.Hostname || got.AssetTag != want.AssetTag || got.Model != want.Model ||
			got.Manufacturer != want.Manufacturer || got.Version != want.Version || !slices.Equal(got.Policies, want.Policies) ||
			!maps.Equal(got.Metadata, want.Metadata) || got.Status != want.Status || got.Category != want.Category {
			t.Errorf("row %d = %+v, want %+v", i, got, want)
		}
	}
}

func TestMetadataEncodingRoundTrip(t *testing.T) {
	t.Parallel()
	for _, md := range []map[string]string{
		{"k": ""}, {"k": `\`}, {"k": `\;`}, {"k": ";;"}, {"k": "a=b=c"}, {"a": "1", "b": "2"}, {"k": `x\\;`},
	} {
		got, err := inventory.DecodeMetadata(inventory.EncodeMetadata(md))
		if err != nil || !maps.Equal(got, md) {
			t.Errorf("%q -> %q -> %q, %v", md, inventory.EncodeMetadata(md), got, err)
		}
	}
	for _, bad := range []string{"k", "k=v;;j=w", ";", `k=a\b`, `k=a\`, "k=1;k=2"} {
		if _, err := inventory.DecodeMetadata(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestCRLF: files written on Windows end their lines with CRLF; the line break is not part of
// the last value.
func TestCRLF(t *testing.T) {
	t.Parallel()
	rows, bad := csvRows(t, "hostname,resource_type,metadata\r\na.example.com,vm,k=v\r\nb.example.com,switch,\r\n")
	if len(bad) != 0 || len(rows) != 2 || rows[0].Metadata["k"] != "v" || rows[1].ResourceType != "switch" || rows[1].Line != 3 {
		t.Fatalf("csv rows %+v, errors %v", rows, bad)
	}
	rows, bad = readAll(t, inventory.NewJSONLReader(strings.NewReader("{\"hostname\":\"a.example.com\",\"resource_type\":\"vm\"}\r\n\r\n{\"hostname\":\"b.example.com\",\"resource_type\":\"vm\"}\r\n")))
	if len(bad) != 0 || len(rows) != 2 || rows[1].Line != 3 {
		t.Fatalf("jsonl rows %+v, errors %v", rows, bad)
	}
}
