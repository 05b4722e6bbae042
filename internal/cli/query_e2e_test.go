package cli_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/queryservice"
	"github.com/cim-infra/registry/internal/testkit"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// startQueryService runs the real query service against url and waits until it serves.
func startQueryService(t *testing.T, url string) {
	t.Helper()
	nc := natstest.Connect(t, url)
	svc, err := queryservice.New(nc, queryservice.Options{}, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("query service: %v", err)
		}
	})
	readyCtx, readyCancel := context.WithTimeout(ctx, 30*time.Second)
	defer readyCancel()
	testkit.WaitFor(t, readyCtx, "the query service's readiness", func() bool { return svc.Ready(ctx) == nil })
}

func TestCimctlQueries(t *testing.T) {
	t.Parallel()
	url := startCommandService(t)
	startQueryService(t, url)
	correlation := uuid.NewString()
	var ids []string
	var version uint64
	for i, host := range []string{"web-02.example.com", "web-01.example.com", "db-01.example.com"} {
		reg := decode[api.CommandReply](t, cimctl(t, url, 0, "register", "--hostname", host, "--type", "vm",
			"--correlation-id", correlation, "-o", "json"))
		ids = append(ids, reg.AggregateID)
		version = reg.Version
		if i == 0 {
			cimctl(t, url, 0, "set-metadata", "--id", reg.AggregateID, "--key", "rack", "--value", "r1, \"left\"")
			cimctl(t, url, 0, "assign-organization", "--id", reg.AggregateID, "--org", uuid.NewString())
			cimctl(t, url, 0, "assign-location", "--id", reg.AggregateID, "--location", uuid.NewString())
			reg = decode[api.CommandReply](t, cimctl(t, url, 0, "change-status", "--id", reg.AggregateID, "--status", "active", "-o", "json"))
			version = reg.Version
		}
	}
	minSeq := strconv.FormatUint(version, 10)

	// One page, then every page, in the default (hostname) order.
	page := decode[api.ResourcePage](t, cimctl(t, url, 0, "list", "--hostname-prefix", "web-", "--min-sequence", minSeq, "--limit", "1", "-o", "json"))
	if len(page.Resources) != 1 || page.Total != 2 || page.NextCursor == "" || page.Resources[0].Hostname != "web-01.example.com" {
		t.Fatalf("first page %+v", page)
	}
	all := decode[api.ResourcePage](t, cimctl(t, url, 0, "list", "--hostname-prefix", "web-", "--limit", "1", "--all", "-o", "json"))
	if len(all.Resources) != 2 || all.Resources[1].Hostname != "web-02.example.com" {
		t.Fatalf("every page %+v", all)
	}
	text := cimctl(t, url, 0, "list", "--status", "active", "--min-sequence", minSeq)
	if !strings.Contains(text.stdout, "web-02.example.com") || strings.Contains(text.stdout, "db-01") || !strings.Contains(text.stdout, "(1 of 1 at sequence") {
		t.Fatalf("table:\n%s", text.stdout)
	}

	// jsonl: one resource per line.
	lines := strings.Split(strings.TrimSpace(cimctl(t, url, 0, "list", "--min-sequence", minSeq, "-o", "jsonl").stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("jsonl: %d lines", len(lines))
	}
	for _, l := range lines {
		var r api.Resource
		if err := json.Unmarshal([]byte(l), &r); err != nil || !slices.Contains(ids, r.ID) {
			t.Fatalf("jsonl line %q: %v", l, err)
		}
	}

	// csv: a header row and one row per resource, metadata with a comma and quotes intact.
	rows, err := csv.NewReader(strings.NewReader(cimctl(t, url, 0, "list", "--min-sequence", minSeq, "--order-by", "-hostname", "-o", "csv").stdout)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || rows[0][0] != "id" || rows[0][1] != "hostname" || rows[1][1] != "web-02.example.com" || rows[3][1] != "db-01.example.com" {
		t.Fatalf("csv rows %q", rows)
	}
	if md := rows[1][slices.Index(rows[0], "metadata")]; md != `rack=r1, "left"` {
		t.Fatalf("csv metadata %q", md)
	}

	counts := decode[api.Counts](t, cimctl(t, url, 0, "count", "--by", "status", "--min-sequence", minSeq, "-o", "json"))
	if counts.Total != 3 || len(counts.Groups) != 2 || counts.Groups[0] != (api.CountGroup{Value: "active", Count: 1}) ||
		counts.Groups[1] != (api.CountGroup{Value: "provisioning", Count: 2}) {
		t.Fatalf("counts %+v", counts)
	}
	if out := cimctl(t, url, 0, "count", "--by", "status").stdout; !strings.Contains(out, "total") {
		t.Fatalf("count table:\n%s", out)
	}

	tr := decode[api.TraceReply](t, cimctl(t, url, 0, "trace", "--correlation-id", correlation, "--min-sequence", minSeq, "-o", "json"))
	if len(tr.Events) != 3 {
		t.Fatalf("trace %+v", tr)
	}
	for i, e := range tr.Events {
		if e.AggregateID != ids[i] || e.Type != "ResourceRegistered" {
			t.Fatalf("trace event %d: %+v", i, e)
		}
	}

	// The service's refusals come through as usage-class failures with the field named.
	bad := cimctl(t, url, 2, "list", "--order-by", "colour")
	if !strings.Contains(bad.stderr, "order_by") {
		t.Fatalf("refusal:\n%s", bad.stderr)
	}
}
