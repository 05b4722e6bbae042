package api_test

import (
	"github.com/cim-infra/registry/internal/mdtable"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cim-infra/registry/pkg/api"
)

// kindDoc is the start of a kind's doc comment: its name and, in brackets, its code.
var kindDoc = regexp.MustCompile(`^(Kind\w+) \((\d{3})\):`)

// declaredKinds reads the package's Kind constants from its source: each kind's string and the
// code its doc comment gives.
func declaredKinds(t *testing.T) map[string]int {
	t.Helper()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	kinds := map[string]int{}
	for _, path := range names {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range file.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "Kind") {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Errorf("%s: not a string literal", name.Name)
						continue
					}
					value, _ := strconv.Unquote(lit.Value)
					doc := vs.Doc
					if doc == nil && len(gen.Specs) == 1 {
						doc = gen.Doc
					}
					m := kindDoc.FindStringSubmatch(doc.Text())
					if m == nil || m[1] != name.Name {
						t.Errorf("%s: its doc comment does not start with %q", name.Name, name.Name+" (code):")
						continue
					}
					code, _ := strconv.Atoi(m[2])
					if _, dup := kinds[value]; dup {
						t.Errorf("%s: kind %q is declared twice", name.Name, value)
					}
					kinds[value] = code
				}
			}
		}
	}
	return kinds
}

// documentedKinds reads the table of the section "### Error kinds" of subjects.md:
// | kind | code | when |.
func documentedKinds(t *testing.T, path string) map[string]int {
	t.Helper()
	rows, err := mdtable.Read(path, "### Error kinds")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, cells := range rows {
		if len(cells) < 3 {
			t.Fatalf("%s: error kind row with %d cells, want 3: %v", path, len(cells), cells)
		}
		kind := strings.Trim(cells[0], "`")
		code, err := strconv.Atoi(cells[1])
		if err != nil {
			t.Fatalf("%s: kind %s: code %q is not a number", path, kind, cells[1])
		}
		if _, dup := kinds[kind]; dup {
			t.Errorf("%s: kind %q is listed twice", path, kind)
		}
		kinds[kind] = code
	}
	return kinds
}

// TestSubjectsDocumentListsEveryKind keeps subjects.md's table of error kinds equal to the Kind
// constants of this package, code included, so that neither can gain, lose or change a kind
// alone.
func TestSubjectsDocumentListsEveryKind(t *testing.T) {
	declared := declaredKinds(t)
	documented := documentedKinds(t, "../../subjects.md")
	if len(declared) == 0 {
		t.Fatal("no Kind constant found in package api")
	}
	for _, kind := range slices.Sorted(maps.Keys(declared)) {
		code, ok := documented[kind]
		switch {
		case !ok:
			t.Errorf("kind %q (%d) is declared in pkg/api but not listed in subjects.md", kind, declared[kind])
		case code != declared[kind]:
			t.Errorf("kind %q: code %d in subjects.md, %d in pkg/api", kind, code, declared[kind])
		}
	}
	for _, kind := range slices.Sorted(maps.Keys(documented)) {
		if _, ok := declared[kind]; !ok {
			t.Errorf("kind %q is listed in subjects.md but not declared in pkg/api", kind)
		}
	}
}

// TestSubjectsDocumentListsEveryCommand keeps subjects.md's command subjects equal to
// Commands(): the names come from the domain, and a change there would change the wire.
func TestSubjectsDocumentListsEveryCommand(t *testing.T) {
	doc, err := os.ReadFile("../../subjects.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(api.CommandPrefix) + `\.([a-z_]+)` + "` \\|")
	var documented []string
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		documented = append(documented, m[1])
	}
	if !slices.Equal(documented, api.Commands()) {
		t.Errorf("subjects.md lists the commands %v, pkg/api %v", documented, api.Commands())
	}
}
