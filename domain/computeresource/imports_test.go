package computeresource

import (
	"fmt"
	"go/build"
	"os/exec"
	"strings"
	"testing"
)

// jsonModule is the JSON library the domain reads events with; its packages (internal ones
// included) are allowed.
const jsonModule = "github.com/go-json-experiment/json"

// allowedImport says whether the domain may import path: the standard library (no dot in
// the first path element), github.com/google/uuid and the packages of jsonModule only.
func allowedImport(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".") || path == "github.com/google/uuid" ||
		path == jsonModule || strings.HasPrefix(path, jsonModule+"/")
}

func disallowedImports(imports []string) []string {
	var bad []string
	for _, p := range imports {
		if !allowedImport(p) {
			bad = append(bad, p)
		}
	}
	return bad
}

// TestDomainImportsOnlyStdlibUUIDAndJSON keeps the domain pure: no NATS, Neo4j, logger, or
// anything of the infrastructure.
func TestDomainImportsOnlyStdlibUUIDAndJSON(t *testing.T) {
	t.Parallel()
	pkg, err := build.Default.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkg.Imports) == 0 {
		t.Fatal("no imports found: the check is not looking at the package")
	}
	if bad := disallowedImports(pkg.Imports); len(bad) > 0 {
		t.Errorf("the domain imports %v; only the standard library and github.com/google/uuid are allowed", bad)
	}
	// Test files may not smuggle infrastructure in either.
	if bad := disallowedImports(append(pkg.TestImports, pkg.XTestImports...)); len(bad) > 0 {
		t.Errorf("the domain's tests import %v", bad)
	}
}

func TestImportCheckCatchesForbiddenImports(t *testing.T) {
	t.Parallel()
	got := disallowedImports([]string{"fmt", "encoding/json", "github.com/google/uuid",
		"github.com/nats-io/nats.go", "github.com/cim-infra/registry/pkg/jetstore", "github.com/google/uuid/v2", "golang.org/x/text",
		jsonModule, jsonModule + "/jsontext", jsonModule + "/internal/jsonwire", jsonModule + "x", "github.com/go-json-experiment/other"})
	want := "[github.com/nats-io/nats.go github.com/cim-infra/registry/pkg/jetstore github.com/google/uuid/v2 golang.org/x/text github.com/go-json-experiment/jsonx github.com/go-json-experiment/other]"
	if fmt.Sprint(got) != want {
		t.Errorf("disallowedImports = %v, want %v", got, want)
	}
}

// TestDomainDependenciesAreStdlibUUIDAndJSON checks the transitive closure too, with go list.
func TestDomainDependenciesAreStdlibUUIDAndJSON(t *testing.T) {
	t.Parallel()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH; TestDomainImportsOnlyStdlibUUIDAndJSON still checks direct imports")
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	const self = "github.com/cim-infra/registry/domain/computeresource"
	if !strings.Contains(string(out), self) {
		t.Fatalf("go list output %q does not list the package itself", out)
	}
	for _, d := range deps {
		if d != self && !allowedImport(d) {
			t.Errorf("the domain depends on %s", d)
		}
	}
}
