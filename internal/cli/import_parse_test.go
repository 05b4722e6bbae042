package cli

import (
	"strings"
	"testing"
)

func TestParseImport(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want importRequest
	}{
		{[]string{"import", "fleet.csv"}, importRequest{file: "fleet.csv", format: "csv", jobs: 8}},
		{[]string{"import", "-j", "64", "fleet.JSONL"}, importRequest{file: "fleet.JSONL", format: "jsonl", jobs: 64}},
		{[]string{"import", "fleet.ndjson", "-dry-run", "-report", "r.jsonl"}, importRequest{file: "fleet.ndjson", format: "jsonl", jobs: 8, dryRun: true, report: "r.jsonl"}},
		{[]string{"import", "-format", "csv", "-"}, importRequest{file: "-", format: "csv", jobs: 8}},
	} {
		inv, err := (&CLI{LookupEnv: noEnv}).parse(tc.args)
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		if got := inv.request.(importRequest); got != tc.want {
			t.Errorf("%v: %+v, want %+v", tc.args, got, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"import"}, "needs a FILE"},
		{[]string{"import", "-"}, "-format"},
		{[]string{"import", "fleet.txt"}, "-format"},
		{[]string{"import", "-format", "xml", "f.csv"}, "xml"},
		{[]string{"import", "-j", "0", "f.csv"}, "-j 0"},
		{[]string{"import", "a.csv", "b.csv"}, `unexpected argument "b.csv"`},
	} {
		_, err := (&CLI{LookupEnv: noEnv}).parse(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
}
