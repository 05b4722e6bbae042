package cli_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/cli"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// streamState returns the event stream's message count and last sequence.
func streamState(t *testing.T, url string) (msgs, last uint64) {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, jetstore.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs, info.State.LastSeq
}

// export lists every resource of the registry at url as CSV, once the query model has applied
// every event written so far.
func export(t *testing.T, url, format string) string {
	t.Helper()
	_, last := streamState(t, url)
	return cimctl(t, url, 0, "list", "--all", "--limit", "7", "--min-sequence", strconv.FormatUint(last, 10), "--wait-ms", "20000", "-o", format).stdout
}

// withoutRegistryColumns blanks the columns the registry sets (created_at, updated_at,
// version), which an import ignores.
func withoutRegistryColumns(t *testing.T, text string) [][]string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	for _, row := range rows[1:] {
		for _, c := range []string{"created_at", "updated_at", "version"} {
			row[slices.Index(rows[0], c)] = ""
		}
	}
	return rows
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var (
	orgA, orgB, locA = uuid.NewString(), uuid.NewString(), uuid.NewString()
	owner, concept   = uuid.NewString(), uuid.NewString()
	polA, polB       = uuid.NewString(), uuid.NewString()
	fixedID          = uuid.NewString()
)

// inventoryCSV is a file with every column an import sets and the CSV cases that need quoting.
func inventoryCSV() string {
	return "\uFEFFid,hostname,resource_type,status,organization_id,location_id,owner_id,account_concept_id,policies,manufacturer,model,serial_number,asset_tag,metadata\n" +
		fixedID + ",web-01.example.com,vm,active," + orgA + "," + locA + "," + owner + "," + concept + "," + polA + ";" + polB +
		`,"Dell, Inc.","R650 ""xs""",SN-1,A-1,"note=say ""hi"", then go;path=a\;b\\c;empty=;eq=x=y"` + "\n" +
		",WEB-02.example.com.,server,maintenance," + orgB + "," + locA + ",,,,,,,,rack=r2\n" +
		",db-01.example.com,switch,decommissioned,,,,,,,,,,\n" +
		",db-02.example.com,fw,,,,,,,HP,,,,\n" +
		",lb-01.example.com,lb,provisioning," + orgA + ",,,," + polB + ",,,,A-2,\n"
}

// TestImportRoundTrip: import a file, export it with list -o csv and -o jsonl, import each export
// into a fresh registry, export again: the same rows, but for the columns the registry sets.
func TestImportRoundTrip(t *testing.T) {
	t.Parallel()
	first := startRegistry(t)
	r := cimctl(t, first, 0, "import", writeFile(t, "fleet.csv", inventoryCSV()), "-j", "3")
	if !strings.Contains(r.stdout, "rows 5, failed 0") || !strings.Contains(r.stderr, "cimctl import: 5 rows (0 failed)") {
		t.Fatalf("import: stdout %q stderr %q", r.stdout, r.stderr)
	}
	exported := export(t, first, "csv")
	want := withoutRegistryColumns(t, exported)
	if len(want) != 6 {
		t.Fatalf("export has %d rows:\n%s", len(want), exported)
	}
	header := want[0]
	byHost := map[string][]string{}
	for _, row := range want[1:] {
		byHost[row[slices.Index(header, "hostname")]] = row
	}
	web := byHost["web-01.example.com"]
	if web[slices.Index(header, "id")] != fixedID || web[slices.Index(header, "status")] != "active" ||
		web[slices.Index(header, "model")] != `R650 "xs"` || web[slices.Index(header, "manufacturer")] != "Dell, Inc." ||
		web[slices.Index(header, "metadata")] != `empty=;eq=x=y;note=say "hi", then go;path=a\;b\\c` {
		t.Errorf("web-01 exported as %q", web)
	}
	if web2 := byHost["web-02.example.com"]; web2 == nil || web2[slices.Index(header, "status")] != "maintenance" ||
		web2[slices.Index(header, "resource_type")] != "physical_server" {
		t.Errorf("web-02 exported as %q", web2)
	}
	if db := byHost["db-01.example.com"]; db == nil || db[slices.Index(header, "status")] != "decommissioned" {
		t.Errorf("db-01 exported as %q", db)
	}
	jsonl := export(t, first, "jsonl")

	// Every command the import sent for a resource carries the correlation id derived from it.
	correlation := uuid.NewSHA1(uuid.MustParse("3c073fb6-4c7d-4fd7-871e-55a323dcea78"), []byte(fixedID+"\x00import")).String()
	tr := decode[api.TraceReply](t, cimctl(t, first, 0, "trace", "--correlation-id", correlation, "-o", "json"))
	if len(tr.Events) != 14 || tr.Events[0].Type != "ResourceRegistered" || tr.Events[13].Type != "StatusChanged" {
		t.Errorf("trace of web-01's import: %+v", tr.Events)
	}
	for _, e := range tr.Events {
		if e.AggregateID != fixedID {
			t.Errorf("trace of web-01's import holds an event of %s", e.AggregateID)
		}
	}

	for _, f := range []struct{ name, text string }{{"export.csv", exported}, {"export.jsonl", jsonl}} {
		second := startRegistry(t)
		cimctl(t, second, 0, "import", writeFile(t, f.name, f.text))
		if got := withoutRegistryColumns(t, export(t, second, "csv")); !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("%s imported into a fresh registry exports\n%q\nwant\n%q", f.name, got, want)
		}
	}
}

// TestImportRerunWritesNothingTwice: an import interrupted half-way and run again ends with the
// events of one uninterrupted import, and a third run writes nothing.
func TestImportRerunWritesNothingTwice(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("hostname,resource_type,status,organization_id,location_id,policies,asset_tag,metadata\n")
	const rows = 120
	for i := range rows {
		fmt.Fprintf(&b, "host-%03d.example.com,vm,maintenance,%s,%s,%s;%s,T-%03d,a=%d;b=x\n", i, orgA, locA, polA, polB, i, i)
	}
	file := writeFile(t, "fleet.csv", b.String())

	clean := startRegistry(t)
	cimctl(t, clean, 0, "import", file, "-j", "4")
	want, _ := streamState(t, clean)

	url := startRegistry(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		var stdout, stderr bytes.Buffer
		c := &cli.CLI{Stdout: &stdout, Stderr: &stderr, LookupEnv: func(k string) (string, bool) { return url, k == "NATS_URL" }}
		done <- c.Run(ctx, []string{"import", file, "-j", "2"})
	}()
	deadline := time.Now().Add(60 * time.Second)
	for msgs, _ := streamState(t, url); msgs < want/3; msgs, _ = streamState(t, url) {
		if time.Now().After(deadline) {
			t.Fatalf("the first import wrote %d of %d events in 60 s", msgs, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-done; code == cli.ExitOK {
		t.Fatal("the interrupted import exited 0: it was not interrupted")
	}
	if msgs, _ := streamState(t, url); msgs >= want {
		t.Fatalf("the interrupted import wrote %d events, all %d", msgs, want)
	}
	r := cimctl(t, url, 0, "import", file, "-j", "4", "-o", "json")
	if got, _ := streamState(t, url); got != want {
		t.Fatalf("after the re-run the stream holds %d events, an uninterrupted import %d\n%s", got, want, r.stdout)
	}
	var sum struct {
		Rows, Failed, Events int
		Duplicates           int `json:"commands_duplicate"`
		Written              int `json:"commands_written"`
	}
	r = cimctl(t, url, 0, "import", file, "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatal(err)
	}
	if got, _ := streamState(t, url); got != want || sum.Rows != rows || sum.Failed != 0 || sum.Written != 0 || sum.Events != 0 {
		t.Fatalf("a third run: stream %d events (want %d), summary %+v", got, want, sum)
	}
}

// TestImportBadRowsReported: the rows that fail are listed with their line and reason, on stderr
// and in -report, the exit code is 6, and the other rows are imported.
func TestImportBadRowsReported(t *testing.T) {
	t.Parallel()
	url := startRegistry(t)
	text := "id,hostname,resource_type,status,organization_id,location_id,asset_tag\n" +
		",ok-01.example.com,vm,,,,\n" + // 2
		",-bad.example.com,vm,,,,\n" + // 3: invalid hostname
		",ok-02.example.com,vm,retired,,,\n" + // 4: invalid status
		",ok-03.example.com,vm,active," + orgA + ",,\n" + // 5: activation without location
		",ok-04.example.com,vm,,,,TAG-1\n" + // 6
		",ok-05.example.com,vm,,,,TAG-1\n" + // 7: asset tag taken by ok-04 (imported first: -j 1)
		fixedID + ",ok-06.example.com,vm,,,,\n" + // 8
		uuid.NewString() + ",ok-06.example.com,vm,,,,\n" + // 9: hostname taken by the row before
		"\"ok-07.example.com,vm,,,\n" + // 10: a quote never closed: the rest of the file is this row
		""
	report := filepath.Join(t.TempDir(), "report.jsonl")
	r := cimctl(t, url, cli.ExitRowsFailed, "import", writeFile(t, "fleet.csv", text), "-j", "1", "-report", report)
	for _, want := range []string{"line 3, column hostname (-bad.example.com): 400 invalid_row:",
		"line 4, column status (ok-02.example.com): 400 invalid_row:", "line 5, column status (ok-03.example.com): 409 row_conflict:",
		"activate", "line 7 (ok-05.example.com): assign_asset_tag: 409 asset_tag_taken",
		"line 9 (ok-06.example.com): register: 409 hostname_taken", "line 10: 400 invalid_row"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
		}
	}
	if !strings.Contains(r.stdout, "rows 9, failed 6") {
		t.Errorf("summary: %s", r.stdout)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var lines []int
	for l := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		var f struct {
			Line  int `json:"line"`
			Error struct {
				Code int    `json:"code"`
				Kind string `json:"kind"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(l), &f); err != nil || f.Error.Kind == "" {
			t.Fatalf("report line %q: %v", l, err)
		}
		lines = append(lines, f.Line)
	}
	slices.Sort(lines)
	if !slices.Equal(lines, []int{3, 4, 5, 7, 9, 10}) {
		t.Errorf("report lines %v\n%s", lines, b)
	}
	for _, host := range []string{"ok-01.example.com", "ok-04.example.com"} {
		id := uuid.NewSHA1(uuid.MustParse("3c073fb6-4c7d-4fd7-871e-55a323dcea78"), []byte("hostname:"+host)).String()
		cimctl(t, url, 0, "get", "--id", id)
	}
	// Row 8 was imported under its id; row 9, with the same hostname, was not.
	if got := decode[api.Resource](t, cimctl(t, url, 0, "get", "--id", fixedID, "-o", "json")); got.Hostname != "ok-06.example.com" {
		t.Errorf("row 8 registered %+v", got)
	}
}

// TestImportDryRunFromStdin: -dry-run reads, checks and plans every row against the registry's
// state and sends no command; "-" reads standard input.
func TestImportDryRunFromStdin(t *testing.T) {
	t.Parallel()
	url := startRegistry(t)
	cimctl(t, url, 0, "register", "--hostname", "b.example.com", "--type", "vm", "--id", fixedID)
	before, _ := streamState(t, url)
	text := `{"hostname":"a.example.com","resource_type":"vm","status":"active","organization_id":"` + orgA + `","location_id":"` + locA + `"}` + "\n" +
		`{"id":"` + fixedID + `","hostname":"b.example.com","resource_type":"vm","metadata":{"k":"v"}}` + "\n" +
		`{"id":"` + fixedID + `","hostname":"c.example.com","resource_type":"vm"}` + "\n"
	var stdout, stderr bytes.Buffer
	c := &cli.CLI{Stdout: &stdout, Stderr: &stderr, Stdin: strings.NewReader(text),
		LookupEnv: func(k string) (string, bool) { return url, k == "NATS_URL" }}
	code := c.Run(context.Background(), []string{"import", "-", "-format", "jsonl", "-dry-run", "-o", "json"})
	var sum struct {
		Rows, Failed int
		Planned      int  `json:"commands_planned"`
		Written      int  `json:"commands_written"`
		DryRun       bool `json:"dry_run"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("%v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	// a: register, organization, location, status; b: one metadata key; c: another hostname under b's id.
	if code != cli.ExitRowsFailed || sum.Rows != 3 || sum.Failed != 1 || sum.Planned != 5 || sum.Written != 0 || !sum.DryRun {
		t.Errorf("exit %d, summary %+v\n%s", code, sum, stderr.String())
	}
	if !strings.Contains(stderr.String(), "line 3, column hostname (c.example.com): 409 row_conflict") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
	if after, _ := streamState(t, url); after != before {
		t.Errorf("a dry run wrote: %d messages before, %d after", before, after)
	}
}

// TestImportDecommissioned: a row naming a decommissioned resource imports when it changes
// nothing, and is refused as a conflict naming the column when it would change something.
func TestImportDecommissioned(t *testing.T) {
	t.Parallel()
	url := startRegistry(t)
	id := uuid.NewString()
	cimctl(t, url, 0, "register", "--id", id, "--hostname", "old.example.com", "--type", "vm")
	cimctl(t, url, 0, "add-policy", "--id", id, "--policy", polA)
	cimctl(t, url, 0, "change-status", "--id", id, "--status", "decommissioned")
	before, _ := streamState(t, url)
	header := "id,hostname,resource_type,status,policies,asset_tag\n"
	r := cimctl(t, url, 0, "import", writeFile(t, "same.csv", header+id+",old.example.com,vm,decommissioned,"+polA+",\n"))
	if !strings.Contains(r.stdout, "rows 1, failed 0, commands written 0") {
		t.Errorf("a row equal to the decommissioned resource: %s", r.stdout)
	}
	for _, tc := range []struct{ row, want string }{
		{id + ",new.example.com,vm,,,\n", "line 2, column hostname (new.example.com): 409 row_conflict"},
		{id + ",old.example.com,vm,,,T-9\n", "line 2, column asset_tag (old.example.com): 409 row_conflict"},
		{id + ",old.example.com,vm,active,,\n", "line 2, column status (old.example.com): 409 row_conflict"},
	} {
		r := cimctl(t, url, cli.ExitRowsFailed, "import", writeFile(t, "changed.csv", header+tc.row))
		if !strings.Contains(r.stderr, tc.want) {
			t.Errorf("row %q: stderr\n%s\nwant %q", tc.row, r.stderr, tc.want)
		}
	}
	if after, _ := streamState(t, url); after != before {
		t.Errorf("the imports wrote to a decommissioned resource: %d messages before, %d after", before, after)
	}
}
