package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cim-infra/registry/internal/cli"
	"github.com/cim-infra/registry/internal/commandservice"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/registrytest"
	"github.com/google/uuid"
)

// startRegistry runs the real registry (registrytest) and returns its server's URL.
func startRegistry(t testing.TB) string {
	t.Helper()
	return registrytest.New(t).URL()
}

// cimctl runs the CLI against url and fails the test unless it exits with want.
func cimctl(t *testing.T, url string, want int, args ...string) run {
	t.Helper()
	r := runCLIWithIDs(t, url, uuid.NewString, args...)
	if r.code != want {
		t.Fatalf("cimctl %s: exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}

func decode[T any](t *testing.T, r run) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("output is not a %T: %v\n%s", v, err, r.stdout)
	}
	return v
}

func TestCimctlAgainstCommandService(t *testing.T) {
	t.Parallel()
	url := startRegistry(t)
	org, loc := uuid.NewString(), uuid.NewString()

	reg := decode[api.CommandReply](t, cimctl(t, url, 0, "register", "--hostname", "web-01.example.com", "--type", "vm", "-o", "json"))
	id := reg.AggregateID
	if id == "" || len(reg.Events) != 1 || reg.Events[0].Type != "ResourceRegistered" {
		t.Fatalf("register reply = %+v", reg)
	}
	cimctl(t, url, 0, "assign-organization", "--id", id, "--org", org)
	locationCmd := uuid.NewString()
	cimctl(t, url, 0, "assign-location", "--id", id, "--location", loc, "--command-id", locationCmd)
	// The same command again is answered from the first application and writes nothing.
	again := cimctl(t, url, 0, "assign-location", "--id", id, "--location", loc, "--command-id", locationCmd)
	if !strings.Contains(again.stdout, "duplicate  yes") {
		t.Errorf("re-sent command: output does not say duplicate:\n%s", again.stdout)
	}
	activated := decode[api.CommandReply](t, cimctl(t, url, 0, "change-status", "--id", id, "--status", "active", "-o", "json"))

	res := decode[api.Resource](t, cimctl(t, url, 0, "get", "--id", id, "-o", "json"))
	if res.ID != id || res.Hostname != "web-01.example.com" || res.Status != "active" || res.OrganizationID != org ||
		res.LocationID != loc || res.Version != activated.Version {
		t.Errorf("get = %+v, want active web-01.example.com in org %s at %s, version %d", res, org, loc, activated.Version)
	}
	text := cimctl(t, url, 0, "get", "--id", id)
	if !strings.Contains(text.stdout, "status           active\n") {
		t.Errorf("get as text:\n%s", text.stdout)
	}
	past := decode[api.Resource](t, cimctl(t, url, 0, "get", "--id", id, "--as-of-seq", jsonNumber(reg.Version), "-o", "json"))
	if past.Status != "provisioning" || past.OrganizationID != "" {
		t.Errorf("get as of the registration = %+v, want provisioning without organization", past)
	}

	page := decode[api.HistoryPage](t, cimctl(t, url, 0, "history", "--id", id, "--all", "--limit", "2", "-o", "json"))
	var types []string
	for _, e := range page.Events {
		types = append(types, e.Type)
	}
	if want := []string{"ResourceRegistered", "OrganizationAssigned", "LocationAssigned", "StatusChanged"}; !slices.Equal(types, want) {
		t.Errorf("history = %v, want %v", types, want)
	}

	bad := cimctl(t, url, 2, "register", "--hostname", "-web.example.com", "--type", "vm")
	if !strings.Contains(bad.stderr, "hostname") {
		t.Errorf("invalid hostname: stderr does not name the field:\n%s", bad.stderr)
	}
	cimctl(t, url, 3, "get", "--id", uuid.NewString())
	cimctl(t, url, 3, "assign-owner", "--id", uuid.NewString(), "--owner", uuid.NewString())
	cimctl(t, url, 4, "change-status", "--id", id, "--status", "provisioning")
}

func jsonNumber(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestCimctlRequestSizeLimit: a request over the command service's limit (64 KiB by default) is
// refused with 400 request_too_large, and the docs state that limit and the refusal as they are.
func TestCimctlRequestSizeLimit(t *testing.T) {
	t.Parallel()
	url := startRegistry(t)
	id := "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b"
	value := strings.Repeat("x", 70000)
	r := cimctl(t, url, cli.ExitUsage, "set-metadata", "--id", id, "--key", "notes", "--value", value, "--command-id", id, "-o", "json")
	var e api.Error
	if err := json.Unmarshal([]byte(r.stderr), &e); err != nil {
		t.Fatalf("stderr is not an api.Error: %v\n%s", err, r.stderr)
	}
	if e.Code != api.CodeInvalid || e.Kind != api.KindRequestTooLarge || e.Details["max_bytes"] != float64(commandservice.DefaultMaxRequestBytes) {
		t.Errorf("refusal = %+v, want 400 %s with max_bytes %d", e, api.KindRequestTooLarge, commandservice.DefaultMaxRequestBytes)
	}
	text := cimctl(t, url, cli.ExitUsage, "set-metadata", "--id", id, "--key", "notes", "--value", value, "--command-id", id)
	// The byte count depends on the envelope's encoding, not on the limit: the docs' example
	// may show another.
	firstLine, _, _ := strings.Cut(text.stderr, "\n")
	firstLine = regexp.MustCompile(`has \d+ bytes`).ReplaceAllString(firstLine, "has N bytes")

	if commandservice.DefaultMaxRequestBytes%1024 != 0 {
		t.Fatalf("DefaultMaxRequestBytes %d is not a whole number of KiB: say it otherwise in the docs", commandservice.DefaultMaxRequestBytes)
	}
	limit := fmt.Sprintf("%d KiB", commandservice.DefaultMaxRequestBytes/1024)
	for _, doc := range []struct {
		path string
		want []string
	}{
		{"../../README.md", []string{limit, "`" + api.KindRequestTooLarge + "`"}},
		{"../../subjects.md", []string{limit, fmt.Sprint(commandservice.DefaultMaxRequestBytes), "`" + api.KindRequestTooLarge + "`", "-max-request-bytes"}},
		{"../../docs/cli.md", []string{limit, "`" + api.KindRequestTooLarge + "`", firstLine}},
	} {
		b, err := os.ReadFile(doc.path)
		if err != nil {
			t.Fatal(err)
		}
		b = regexp.MustCompile(`has \d+ bytes`).ReplaceAll(b, []byte("has N bytes"))
		for _, w := range doc.want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s does not say %q", doc.path, w)
			}
		}
	}
}
