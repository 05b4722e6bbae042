package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/inventory"
)

// Output formats of the list subcommand besides text and json.
const (
	OutputTable = "table" // the same as text
	OutputJSONL = "jsonl"
	OutputCSV   = "csv"
)

// listQuery is the list subcommand's request: a page, or every page.
type listQuery struct {
	api.List
	All bool `json:"-"`
}

// querySpecs are the subcommands of the query service.
func querySpecs() []spec {
	return []spec{
		{name: "list", summary: "list the resources that match filters, in an order, a page at a time or --all (query service)", query: true,
			outputs: []string{OutputText, OutputTable, OutputJSON, OutputJSONL, OutputCSV}, subject: api.QuerySubject(api.QueryList),
			define: func(fs *flag.FlagSet) func() (any, error) {
				var q listQuery
				filter := filterFlags(fs, &q.Filter)
				consistencyFlags(fs, &q.Consistency)
				fs.StringVar(&q.OrderBy, "order-by", "", "sort field, \"-\" in front for descending: "+strings.Join(api.OrderFields(), ", ")+" (default hostname)")
				fs.IntVar(&q.Limit, "limit", 0, fmt.Sprintf("page size, at most %d (default %d)", api.MaxListLimit, api.DefaultListLimit))
				fs.StringVar(&q.Cursor, "cursor", "", "continue after the page that printed this cursor (same filters and order)")
				fs.BoolVar(&q.All, "all", false, "list every match, page after page")
				return func() (any, error) {
					if err := filter(); err != nil {
						return nil, err
					}
					if q.Limit < 0 {
						return nil, usageErrorf("--limit %d is negative", q.Limit)
					}
					return q, nil
				}
			}},
		{name: "count", summary: "count the resources that match filters, grouped by a field (query service)", query: true,
			subject: api.QuerySubject(api.QueryCount),
			define: func(fs *flag.FlagSet) func() (any, error) {
				var q api.Count
				filter := filterFlags(fs, &q.Filter)
				consistencyFlags(fs, &q.Consistency)
				fs.StringVar(&q.By, "by", "", "grouping field: "+strings.Join(api.CountFields(), ", ")+" (required)")
				return func() (any, error) {
					if err := filter(); err != nil {
						return nil, err
					}
					return q, required(fs, "by")
				}
			}},
		{name: "trace", summary: "list every event of one correlation id across resources, in stream order (query service)", query: true,
			subject: api.QuerySubject(api.QueryTrace),
			define: func(fs *flag.FlagSet) func() (any, error) {
				var q api.Trace
				consistencyFlags(fs, &q.Consistency)
				fs.StringVar(&q.CorrelationID, "correlation-id", "", "correlation id (required)")
				return func() (any, error) { return q, required(fs, "correlation-id") }
			}},
	}
}

// stringList is a flag that may be repeated and takes comma-separated values.
type stringList struct{ p *[]string }

func (l stringList) String() string {
	if l.p == nil {
		return ""
	}
	return strings.Join(*l.p, ",")
}

func (l stringList) Set(v string) error {
	for part := range strings.SplitSeq(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*l.p = append(*l.p, part)
		}
	}
	return nil
}

// filterFlags defines a flag per filter field on fs; the returned function finishes the filter
// once fs is parsed (the time flags).
func filterFlags(fs *flag.FlagSet, f *api.Filter) func() error {
	fs.Var(stringList{&f.OrganizationIDs}, "org", "organization id; repeat or separate with commas for any of several")
	fs.Var(stringList{&f.LocationIDs}, "location", "location id; repeatable")
	fs.Var(stringList{&f.OwnerIDs}, "owner", "owner's person id; repeatable")
	fs.Var(stringList{&f.AccountConceptIDs}, "account-concept", "account concept id; repeatable")
	fs.Var(stringList{&f.Statuses}, "status", "status: provisioning, active, maintenance, decommissioned; repeatable")
	fs.Var(stringList{&f.ResourceTypes}, "type", "resource type, such as vm or switch; repeatable")
	fs.Var(stringList{&f.Categories}, "category", "category, such as compute or network; repeatable")
	fs.Var(stringList{&f.Policies}, "policy", "policy id; repeat for resources with every one")
	fs.StringVar(&f.Hostname, "hostname", "", "exact host name (case ignored)")
	fs.StringVar(&f.HostnamePrefix, "hostname-prefix", "", "host names starting with this")
	fs.StringVar(&f.HostnameGlob, "hostname-glob", "", "host names matching this pattern ('*', '?', '[a-z]')")
	fs.StringVar(&f.AssetTag, "asset-tag", "", "exact asset tag")
	fs.StringVar(&f.Manufacturer, "manufacturer", "", "exact manufacturer")
	fs.StringVar(&f.Model, "model", "", "exact model")
	fs.StringVar(&f.SerialNumber, "serial", "", "exact serial number")
	fs.Var(stringList{&f.Metadata}, "metadata", "metadata key, or key=value; repeat for resources with every one")
	fs.StringVar(&f.Q, "q", "", "free text in the host name, asset tag, serial number, model or a metadata value (case ignored)")
	times := []struct {
		name string
		p    **time.Time
		text *string
	}{
		{"created-after", &f.CreatedAfter, new(string)}, {"created-before", &f.CreatedBefore, new(string)},
		{"updated-after", &f.UpdatedAfter, new(string)}, {"updated-before", &f.UpdatedBefore, new(string)},
	}
	for _, t := range times {
		fs.StringVar(t.text, t.name, "", strings.ReplaceAll(t.name, "-", " ")+" this time (RFC 3339; after is inclusive, before exclusive)")
	}
	return func() error {
		for _, t := range times {
			if *t.text == "" {
				continue
			}
			v, err := time.Parse(time.RFC3339Nano, *t.text)
			if err != nil {
				return usageErrorf("--%s %q is not an RFC 3339 time, such as 2026-05-01T12:00:00Z", t.name, *t.text)
			}
			*t.p = &v
		}
		return nil
	}
}

func consistencyFlags(fs *flag.FlagSet, c *api.Consistency) {
	fs.Uint64Var(&c.MinSequence, "min-sequence", 0, "answer from a model that has applied this stream sequence (a command's version)")
	fs.Int64Var(&c.WaitMillis, "wait-ms", 0, "how long the service may wait for --min-sequence, in milliseconds (default the service's)")
}

// renderList prints a page of resources in the output format.
func renderList(w io.Writer, output string, p *api.ResourcePage) error {
	switch output {
	case OutputJSON:
		return writeJSON(w, p)
	case OutputJSONL:
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for _, r := range p.Resources {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	case OutputCSV:
		// The inventory format, which cimctl import reads back.
		cw := inventory.NewCSVWriter(w)
		for _, r := range p.Resources {
			if err := cw.Write(r); err != nil {
				return err
			}
		}
		return cw.Flush()
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ID\tHOSTNAME\tTYPE\tSTATUS\tORGANIZATION\tLOCATION\tVERSION\n")
	for _, r := range p.Resources {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", r.ID, r.Hostname, r.ResourceType, r.Status,
			dash(r.OrganizationID), dash(r.LocationID), r.Version)
	}
	fmt.Fprintf(tw, "(%d of %d at sequence %d", len(p.Resources), p.Total, p.AsOfSequence)
	if p.NextCursor != "" {
		fmt.Fprintf(tw, "; more: --cursor %s, or --all", p.NextCursor)
	}
	fmt.Fprintf(tw, ")\n")
	return tw.Flush()
}

func renderCounts(w io.Writer, c *api.Counts) {
	fmt.Fprintf(w, "%s\tCOUNT\n", strings.ToUpper(c.By))
	for _, g := range c.Groups {
		fmt.Fprintf(w, "%s\t%d\n", dash(g.Value), g.Count)
	}
	fmt.Fprintf(w, "total\t%d\n", c.Total)
}

func renderTrace(w io.Writer, t *api.TraceReply) {
	fmt.Fprintf(w, "SEQ\tTYPE\tRESOURCE\tCOMMAND ID\tCAUSATION ID\tTIME\n")
	for _, e := range t.Events {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Sequence, e.Type, e.AggregateID, dash(e.CommandID), dash(e.CausationID), timeText(e.Timestamp))
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
