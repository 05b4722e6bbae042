package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/registrytest"
)

const (
	org  = "0b0f3c6e-6a52-4c8e-9a43-3c1f5d9e2a01"
	site = "7d4e2b19-0c6f-4f7a-8e15-2a9b3c4d5e02"
)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func readFile(t *testing.T, path string) []Host {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hosts, err := ReadInventory(f)
	if err != nil {
		t.Fatal(err)
	}
	return hosts
}

func parse(t *testing.T, csv string) []Host {
	t.Helper()
	hosts, err := ReadInventory(strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	return hosts
}

// byHostname reads every resource through the command service (current state), by hostname.
func byHostname(t *testing.T, ctx context.Context, reg *registrytest.Registry) map[string]api.Resource {
	t.Helper()
	head, err := reg.Store().LastSequence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, err := reg.Client().ListAll(ctx, api.List{Consistency: api.Consistency{MinSequence: head}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]api.Resource{}
	for _, r := range all {
		out[r.Hostname] = r
	}
	return out
}

func TestSyncBringsTheRegistryInStep(t *testing.T) {
	t.Parallel()
	reg := registrytest.New(t)
	ctx := ctxFor(t)
	s := &Syncer{Client: reg.Client()}

	rep, err := s.Sync(ctx, readFile(t, "testdata/inventory.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Registered != 3 || rep.Updated != 0 || rep.Decommissioned != 0 {
		t.Fatalf("first sync: %+v", rep)
	}
	got := byHostname(t, ctx, reg)
	web1, web2, db1 := got["web-01.example.com"], got["web-02.example.com"], got["db-01.example.com"]
	if web1.Status != "active" || web1.OrganizationID != org || web1.LocationID != site || web1.AssetTag != "ASSET-0001" || web1.Metadata[ManagedBy] != Tool {
		t.Errorf("web-01 = %+v", web1)
	}
	if web2.Status != "provisioning" || web2.AssetTag != "" || web2.ResourceType != "virtual_machine" {
		t.Errorf("web-02 = %+v", web2)
	}
	if db1.Status != "active" || db1.ResourceType != "physical_server" || db1.AssetTag != "ASSET-0002" {
		t.Errorf("db-01 = %+v", db1)
	}

	// The same inventory again changes nothing, whether or not the query service has caught up.
	head, err := reg.Store().LastSequence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rep, err = s.Sync(ctx, readFile(t, "testdata/inventory.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Registered != 0 || rep.Updated != 0 || rep.Decommissioned != 0 || rep.Unchanged != 3 || len(rep.Actions) != 0 {
		t.Fatalf("second sync: %+v", rep)
	}
	if after, err := reg.Store().LastSequence(ctx); err != nil || after != head {
		t.Fatalf("second sync wrote events: head %d -> %d (%v)", head, after, err)
	}

	// Empty cells leave the registry's values as they are: an active host is not sent back to
	// provisioning, nor its organization cleared.
	rep, err = s.Sync(ctx, parse(t, "hostname,resource_type,status,organization_id\n"+
		"web-01.example.com,virtual_machine,,\nweb-02.example.com,virtual_machine,,\ndb-01.example.com,physical_server,,\n"))
	if err != nil || len(rep.Actions) != 0 || rep.Unchanged != 3 {
		t.Fatalf("sync with empty cells: %+v, %v", rep, err)
	}
}

// Changes in the inventory reach the registry; a resource this tool did not register is never
// decommissioned.
func TestSyncFollowsTheInventory(t *testing.T) {
	t.Parallel()
	reg := registrytest.New(t)
	ctx := ctxFor(t)
	s := &Syncer{Client: reg.Client()}
	if _, err := s.Sync(ctx, readFile(t, "testdata/inventory.csv")); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Client().Register(ctx, api.Register{Hostname: "other-tool.example.com", ResourceType: "router"}); err != nil {
		t.Fatal(err)
	}

	rep, err := s.Sync(ctx, parse(t, `hostname,resource_type,status,organization_id,location_id,asset_tag
web-01.example.com,virtual_machine,maintenance,`+org+`,`+site+`,ASSET-0001
web-02.example.com,virtual_machine,active,`+org+`,`+site+`,ASSET-0003
`))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Registered != 0 || rep.Updated != 2 || rep.Decommissioned != 1 {
		t.Fatalf("sync: %+v", rep)
	}
	want := []string{
		"change-status web-01.example.com maintenance",
		"assign-organization web-02.example.com " + org,
		"assign-location web-02.example.com " + site,
		"assign-asset-tag web-02.example.com ASSET-0003",
		"change-status web-02.example.com active",
		"decommission db-01.example.com",
	}
	if !slices.Equal(rep.Actions, want) {
		t.Errorf("actions:\n%s\nwant:\n%s", strings.Join(rep.Actions, "\n"), strings.Join(want, "\n"))
	}
	got := byHostname(t, ctx, reg)
	if got["web-01.example.com"].Status != "maintenance" || got["web-02.example.com"].Status != "active" ||
		got["db-01.example.com"].Status != "decommissioned" || got["other-tool.example.com"].Status != "provisioning" {
		t.Fatalf("statuses: %+v", got)
	}
}

// A dry run reports the actions and writes nothing.
func TestDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	reg := registrytest.New(t)
	ctx := ctxFor(t)
	s := &Syncer{Client: reg.Client(), DryRun: true}
	rep, err := s.Sync(ctx, readFile(t, "testdata/inventory.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Registered != 3 || !slices.Contains(rep.Actions, "register db-01.example.com physical_server") {
		t.Fatalf("dry run: %+v", rep)
	}
	if head, err := reg.Store().LastSequence(ctx); err != nil || head != 0 {
		t.Fatalf("dry run wrote up to sequence %d (%v)", head, err)
	}
}

// The command line: a registry that does not answer is exit status 2 (run again as it is); once
// it answers, the same run succeeds.
func TestRunExitStatus(t *testing.T) {
	t.Parallel()
	reg := registrytest.New(t)
	file := filepath.Join("testdata", "inventory.csv")
	var stdout, stderr bytes.Buffer

	reg.PauseServices()
	code := run(ctxFor(t), []string{"-nats-url", reg.URL(), "-file", file, "-timeout", "200ms", "-retries", "0"}, &stdout, &stderr)
	reg.ResumeServices()
	if code != 2 || !strings.Contains(stderr.String(), "timeout") {
		t.Fatalf("paused registry: exit %d, stderr %s", code, stderr.String())
	}

	stdout.Reset()
	stderr.Reset()
	if code := run(ctxFor(t), []string{"-nats-url", reg.URL(), "-file", file}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "registered 3, updated 0, decommissioned 0") {
		t.Fatalf("stdout:\n%s", stdout.String())
	}

	stderr.Reset()
	bad := filepath.Join(t.TempDir(), "bad.csv")
	if err := os.WriteFile(bad, []byte("hostname,resource_type\nx.example.com,no_such_type\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := run(ctxFor(t), []string{"-nats-url", reg.URL(), "-file", bad}, &stdout, &stderr); code != 1 {
		t.Fatalf("refused command: exit %d, want 1; stderr %s", code, stderr.String())
	}
}

func TestReadInventoryRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, csv, want string }{
		{"unknown column", "hostname,resource_type,colour\n", `unknown column "colour"`},
		{"no hostname column", "resource_type\n", "no hostname column"},
		{"empty hostname", "hostname,resource_type\n,vm\n", "line 2: hostname and resource_type are required"},
		{"duplicate in another case", "hostname,resource_type\na.example.com,vm\nA.example.com,vm\n", "line 3: A.example.com is already on line 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadInventory(strings.NewReader(tc.csv))
			if !errors.Is(err, ErrInventory) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}
