package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/pkg/api"
)

const (
	id  = "0196a7c0-0000-7000-8000-000000000001"
	uid = "0196a7c0-0000-7000-8000-0000000000aa"
)

func noEnv(string) (string, bool) { return "", false }

func TestParseRequests(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args    []string
		subject string
		want    string // the request as JSON
	}{
		{[]string{"register", "--hostname", "web-01.example.com", "--type", "vm"},
			"cim.cmd.computeresource.register", `{"hostname":"web-01.example.com","resource_type":"vm"}`},
		{[]string{"register", "-hostname=h", "-type=switch", "--id", id, "--command-id", "c1", "--correlation-id", "k1", "--causation-id", "z1"},
			"cim.cmd.computeresource.register", `{"command_id":"c1","correlation_id":"k1","causation_id":"z1","aggregate_id":"` + id + `","hostname":"h","resource_type":"switch"}`},
		{[]string{"assign-organization", "--id", id, "--org", uid},
			"cim.cmd.computeresource.assign_organization", `{"aggregate_id":"` + id + `","organization_id":"` + uid + `"}`},
		{[]string{"assign-location", "--id", id, "--location", uid, "--command-id", "c2"},
			"cim.cmd.computeresource.assign_location", `{"command_id":"c2","aggregate_id":"` + id + `","location_id":"` + uid + `"}`},
		{[]string{"assign-owner", "--id", id, "--owner", uid},
			"cim.cmd.computeresource.assign_owner", `{"aggregate_id":"` + id + `","owner_id":"` + uid + `"}`},
		{[]string{"add-policy", "--id", id, "--policy", uid},
			"cim.cmd.computeresource.add_policy", `{"aggregate_id":"` + id + `","policy_id":"` + uid + `"}`},
		{[]string{"remove-policy", "--id", id, "--policy", uid},
			"cim.cmd.computeresource.remove_policy", `{"aggregate_id":"` + id + `","policy_id":"` + uid + `"}`},
		{[]string{"assign-account-concept", "--id", id, "--concept", uid},
			"cim.cmd.computeresource.assign_account_concept", `{"aggregate_id":"` + id + `","concept_id":"` + uid + `"}`},
		{[]string{"clear-account-concept", "--id", id},
			"cim.cmd.computeresource.clear_account_concept", `{"aggregate_id":"` + id + `"}`},
		{[]string{"set-hardware", "--id", id, "--model", "R650", "--serial", ""},
			"cim.cmd.computeresource.set_hardware_details", `{"aggregate_id":"` + id + `","model":"R650","serial_number":""}`},
		{[]string{"set-hardware", "--id", id, "--manufacturer", "Dell", "--model", "R650", "--serial", "SN1"},
			"cim.cmd.computeresource.set_hardware_details", `{"aggregate_id":"` + id + `","manufacturer":"Dell","model":"R650","serial_number":"SN1"}`},
		{[]string{"assign-asset-tag", "--id", id, "--tag", "A-1"},
			"cim.cmd.computeresource.assign_asset_tag", `{"aggregate_id":"` + id + `","asset_tag":"A-1"}`},
		{[]string{"set-metadata", "--id", id, "--key", "rack", "--value", "r12"},
			"cim.cmd.computeresource.update_metadata", `{"aggregate_id":"` + id + `","key":"rack","value":"r12"}`},
		{[]string{"set-metadata", "--id", id, "--key", "rack", "--value", ""},
			"cim.cmd.computeresource.update_metadata", `{"aggregate_id":"` + id + `","key":"rack","value":""}`},
		{[]string{"change-status", "--id", id, "--status", "active", "-o", "json"},
			"cim.cmd.computeresource.change_status", `{"aggregate_id":"` + id + `","status":"active"}`},
		{[]string{"get", "--id", id},
			"cim.qry.computeresource.get", `{"aggregate_id":"` + id + `"}`},
		{[]string{"get", "--id", id, "--as-of-seq", "12"},
			"cim.qry.computeresource.get", `{"aggregate_id":"` + id + `","as_of_sequence":12}`},
		{[]string{"get", "--id", id, "--as-of-time", "2026-05-01T12:00:00+02:00"},
			"cim.qry.computeresource.get", `{"aggregate_id":"` + id + `","as_of_time":"2026-05-01T12:00:00+02:00"}`},
		{[]string{"history", "--id", id, "--after", "3", "--limit", "10"},
			"cim.qry.computeresource.history", `{"aggregate_id":"` + id + `","after_sequence":3,"limit":10}`},
		{[]string{"history", "--id", id, "--all"},
			"cim.qry.computeresource.history", `{"aggregate_id":"` + id + `"}`},
		{[]string{"list"}, "cim.qry.computeresource.list", `{}`},
		{[]string{"list", "--org", id + "," + uid, "--location", uid, "--owner", uid, "--account-concept", uid,
			"--status", "active", "--status", "maintenance", "--type", "vm", "--category", "network", "--policy", uid,
			"--hostname", "h.example.com", "--hostname-prefix", "web-", "--hostname-glob", "web-*", "--asset-tag", "A-1",
			"--manufacturer", "Dell", "--model", "R650", "--serial", "SN1", "--metadata", "rack=r1", "--metadata", "env",
			"--created-after", "2026-05-01T12:00:00Z", "--created-before", "2026-06-01T00:00:00Z",
			"--updated-after", "2026-05-02T00:00:00Z", "--updated-before", "2026-05-03T00:00:00Z", "--q", "r6",
			"--order-by", "-updated_at", "--limit", "50", "--cursor", "abc", "--min-sequence", "9", "--wait-ms", "100", "-o", "csv"},
			"cim.qry.computeresource.list", `{"min_sequence":9,"wait_ms":100,"organization_id":["` + id + `","` + uid + `"],` +
				`"location_id":["` + uid + `"],"owner_id":["` + uid + `"],"account_concept_id":["` + uid + `"],` +
				`"status":["active","maintenance"],"resource_type":["vm"],"category":["network"],"policy_id":["` + uid + `"],` +
				`"hostname":"h.example.com","hostname_prefix":"web-","hostname_glob":"web-*","asset_tag":"A-1",` +
				`"manufacturer":"Dell","model":"R650","serial_number":"SN1","metadata":["rack=r1","env"],` +
				`"created_after":"2026-05-01T12:00:00Z","created_before":"2026-06-01T00:00:00Z",` +
				`"updated_after":"2026-05-02T00:00:00Z","updated_before":"2026-05-03T00:00:00Z","q":"r6",` +
				`"order_by":"-updated_at","limit":50,"cursor":"abc"}`},
		{[]string{"count", "--by", "status", "--status", "active"},
			"cim.qry.computeresource.count", `{"status":["active"],"by":"status"}`},
		{[]string{"trace", "--correlation-id", uid, "--min-sequence", "3"},
			"cim.qry.computeresource.trace", `{"min_sequence":3,"correlation_id":"` + uid + `"}`},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			c := &CLI{LookupEnv: noEnv}
			inv, err := c.parse(tc.args)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if inv.spec.subject != tc.subject {
				t.Errorf("subject = %s, want %s", inv.spec.subject, tc.subject)
			}
			got, err := json.Marshal(inv.request)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("request = %s\nwant      %s", got, tc.want)
			}
			if h, ok := inv.request.(historyQuery); ok && h.All != slices.Contains(tc.args, "--all") {
				t.Errorf("all = %v", h.All)
			}
		})
		seen[tc.args[0]] = true
	}
	for _, sp := range specs() {
		if !seen[sp.name] && sp.operand == "" { // import: TestParseImport
			t.Errorf("subcommand %s has no parsing case", sp.name)
		}
	}
	// Every command of the contract has a subcommand.
	subjects := map[string]bool{}
	for _, sp := range specs() {
		subjects[sp.subject] = true
	}
	for _, name := range api.Commands() {
		if !subjects[api.CommandSubject(name)] {
			t.Errorf("command %s has no subcommand", name)
		}
	}
}

func TestParseCommonFlags(t *testing.T) {
	t.Parallel()
	env := map[string]string{"NATS_URL": "nats://env:4222", "NATS_TOKEN": "s3cret", "HOSTNAME": "my-laptop", "TYPE": "vm"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	c := &CLI{LookupEnv: lookup}

	inv, err := c.parse([]string{"get", "--id", id, "--timeout", "2s", "--retries", "0", "--output", "json"})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if inv.nats.URL != "nats://env:4222" || inv.nats.Token != "s3cret" || inv.nats.Name != Name {
		t.Errorf("nats config = %+v, want URL and token from the environment", inv.nats)
	}
	if inv.timeout != 2*time.Second || inv.retries != 0 || inv.output != OutputJSON {
		t.Errorf("timeout, retries, output = %s, %d, %s", inv.timeout, inv.retries, inv.output)
	}

	inv, err = c.parse([]string{"get", "--id", id, "--nats-url", "nats://flag:4222"})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if inv.nats.URL != "nats://flag:4222" || inv.nats.Token != "s3cret" {
		t.Errorf("nats config = %+v, want the flag's URL and the environment's token", inv.nats)
	}

	c = &CLI{LookupEnv: noEnv}
	inv, err = c.parse([]string{"get", "--id", id})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if inv.nats.URLOrDefault() != DefaultURL || inv.output != OutputText || inv.retries != 2 || inv.timeout != api.DefaultTimeout {
		t.Errorf("defaults: url %s, output %s, retries %d, timeout %s", inv.nats.URLOrDefault(), inv.output, inv.retries, inv.timeout)
	}

	// Field flags have no environment variable: a shell's HOSTNAME must not register a resource.
	c = &CLI{LookupEnv: lookup}
	if _, err := c.parse([]string{"register"}); err == nil || !strings.Contains(err.Error(), "--hostname, --type are required") {
		t.Errorf("register without flags but HOSTNAME and TYPE set: error %v, want both required", err)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args    []string
		message string
	}{
		{nil, "Usage:"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"help", "frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"register", "--type", "vm"}, "--hostname is required"},
		{[]string{"register", "--hostname", "h", "--colour", "red"}, "flag provided but not defined: -colour"},
		{[]string{"register", "--hostname", "h", "--type", "vm", "extra"}, `unexpected argument "extra"`},
		{[]string{"assign-organization", "--id", id}, "--org is required"},
		{[]string{"assign-organization"}, "--id, --org are required"},
		{[]string{"clear-account-concept"}, "--id is required"},
		{[]string{"set-hardware", "--id", id}, "at least one of --manufacturer, --model, --serial"},
		{[]string{"set-metadata", "--id", id, "--key", "k"}, "--value is required"},
		{[]string{"change-status", "--id", id}, "--status is required"},
		{[]string{"get"}, "--id is required"},
		{[]string{"get", "--id", id, "--as-of-seq", "3", "--as-of-time", "2026-05-01T12:00:00Z"}, "not both"},
		{[]string{"get", "--id", id, "--as-of-time", "yesterday"}, `--as-of-time "yesterday" is not an RFC 3339 time`},
		{[]string{"get", "--id", id, "--as-of-seq", "-1"}, "invalid value"},
		{[]string{"history", "--id", id, "--limit", "-5"}, "--limit -5 is negative"},
		{[]string{"get", "--id", id, "-o", "yaml"}, `-o "yaml": want one of text, table, json`},
		{[]string{"get", "--id", id, "-o", "csv"}, `-o "csv": want one of text, table, json`},
		{[]string{"list", "-o", "yaml"}, `-o "yaml": want one of text, table, json, jsonl, csv`},
		{[]string{"count"}, `--by is required`},
		{[]string{"trace"}, `--correlation-id is required`},
		{[]string{"list", "--created-after", "yesterday"}, `--created-after "yesterday" is not an RFC 3339 time`},
		{[]string{"list", "--limit", "-1"}, `--limit -1 is negative`},
		{[]string{"get", "--id", id, "--timeout", "0s"}, "--timeout 0s is not positive"},
		{[]string{"get", "--id", id, "--retries", "-1"}, "--retries -1 is negative"},
		{[]string{"get", "--id", id, "--nats-user", "u"}, "-nats-password (NATS_PASSWORD) is empty"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			c := &CLI{Stdout: &stdout, Stderr: &stderr, LookupEnv: noEnv}
			if code := c.Run(context.Background(), tc.args); code != ExitUsage {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, ExitUsage, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.message) {
				t.Errorf("stderr does not say %q:\n%s", tc.message, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout is not empty:\n%s", stdout.String())
			}
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	var stdout bytes.Buffer
	c := &CLI{Stdout: &stdout, Stderr: &stdout, LookupEnv: noEnv}
	if code := c.Run(context.Background(), []string{"help"}); code != ExitOK {
		t.Fatalf("help: exit code %d", code)
	}
	overview := stdout.String()
	for _, sp := range specs() {
		if !strings.Contains(overview, "  "+sp.name+" ") {
			t.Errorf("help does not list %s", sp.name)
		}
		for _, args := range [][]string{{"help", sp.name}, {sp.name, "-h"}, {sp.name, "--help"}} {
			stdout.Reset()
			if code := c.Run(context.Background(), args); code != ExitOK {
				t.Errorf("%v: exit code %d", args, code)
			}
			if !strings.HasPrefix(stdout.String(), "Usage: cimctl "+sp.name+" [flags]") || !strings.Contains(stdout.String(), "--nats-url string  (NATS_URL)") {
				t.Errorf("%v: output:\n%s", args, stdout.String())
			}
		}
	}
}
