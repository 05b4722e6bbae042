package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cim-infra/registry/pkg/api"
)

// render prints a reply (*api.CommandReply, *api.Resource or *api.HistoryPage) in the output
// format: indented JSON of the wire type, or text for a person.
func render(w io.Writer, output string, reply any) error {
	if output == OutputJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(reply)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	switch r := reply.(type) {
	case *api.CommandReply:
		renderCommandReply(tw, r)
	case *api.Resource:
		renderResource(tw, r)
	case *api.HistoryPage:
		renderHistory(tw, r)
	case *api.Counts:
		renderCounts(tw, r)
	case *api.TraceReply:
		renderTrace(tw, r)
	default:
		return fmt.Errorf("cli: no text rendering for %T", reply)
	}
	return tw.Flush()
}

func renderCommandReply(w io.Writer, r *api.CommandReply) {
	fmt.Fprintf(w, "resource\t%s\n", r.AggregateID)
	fmt.Fprintf(w, "version\t%d\n", r.Version)
	if r.Duplicate {
		fmt.Fprintf(w, "duplicate\tyes: this command id was applied before; nothing was written now\n")
	}
	if len(r.Events) == 0 {
		fmt.Fprintf(w, "events\tnone: nothing changed\n")
	}
	for _, e := range r.Events {
		fmt.Fprintf(w, "event\t%s\tseq %d\tid %s\n", e.Type, e.Sequence, e.ID)
	}
}

func renderResource(w io.Writer, r *api.Resource) {
	typ := r.ResourceType
	if r.Category != "" {
		typ += " (" + r.Category + ")"
	}
	var metadata []string
	for _, k := range slices.Sorted(maps.Keys(r.Metadata)) {
		metadata = append(metadata, k+"="+r.Metadata[k])
	}
	rows := [][2]string{
		{"id", r.ID},
		{"hostname", r.Hostname},
		{"type", typ},
		{"status", r.Status},
		{"organization", r.OrganizationID},
		{"location", r.LocationID},
		{"owner", r.OwnerID},
		{"account concept", r.AccountConceptID},
		{"policies", strings.Join(r.Policies, ", ")},
		{"manufacturer", r.Manufacturer},
		{"model", r.Model},
		{"serial number", r.SerialNumber},
		{"asset tag", r.AssetTag},
		{"metadata", strings.Join(metadata, ", ")},
		{"created", timeText(r.CreatedAt)},
		{"updated", timeText(r.UpdatedAt)},
		{"version", fmt.Sprint(r.Version)},
	}
	for _, row := range rows {
		v := row[1]
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(w, "%s\t%s\n", row[0], v)
	}
}

func renderHistory(w io.Writer, p *api.HistoryPage) {
	fmt.Fprintf(w, "SEQ\tTYPE\tV\tSTORED AT\tCOMMAND ID\tDATA\n")
	for _, e := range p.Events {
		commandID := e.CommandID
		if commandID == "" {
			commandID = "-"
		}
		fmt.Fprintf(w, "%d\t%s\t%d\t%s\t%s\t%s\n", e.Sequence, e.Type, e.SchemaVersion, timeText(e.StoredAt), commandID, payload(e.Data))
	}
	if p.More {
		fmt.Fprintf(w, "(more events follow: --after %d, or --all)\n", p.NextAfter)
	}
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// envelopeKeys are the fields of stored event data that the history table shows in columns of
// their own or that repeat the resource: the DATA column shows the rest, the event's payload.
var envelopeKeys = []string{"event_id", "aggregate_id", "command_id", "correlation_id", "causation_id", "timestamp"}

// payload prints an event's data on one line without its envelope fields; data that is not a
// JSON object is shown as it is.
func payload(data json.RawMessage) string {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		return string(data)
	}
	for _, k := range envelopeKeys {
		delete(fields, k)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(fields); err != nil {
		return string(data)
	}
	return strings.TrimSuffix(b.String(), "\n")
}
