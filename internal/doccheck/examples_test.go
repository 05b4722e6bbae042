package doccheck

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSampleModulesUsePublicPackagesOnly keeps every sample under examples/ to what a user's
// module can import: a sample is a module of its own (with a replace to this one), and none of
// its files, tests included, imports a package under internal/. Go would refuse such an import
// in a user's module; within this repository only this test does.
func TestSampleModulesUsePublicPackagesOnly(t *testing.T) {
	samples, err := os.ReadDir(filepath.Join(root, "examples"))
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) == 0 {
		t.Fatal("no sample under examples/")
	}
	for _, s := range samples {
		if !s.IsDir() {
			continue
		}
		dir := filepath.Join(root, "examples", s.Name())
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
			t.Errorf("examples/%s is not a module of its own: %v", s.Name(), err)
		}
		for _, v := range internalImports(t, dir) {
			t.Errorf("examples/%s: %s", s.Name(), v)
		}
	}
}

// internalImports lists the imports of this module's internal/ packages in the Go files under
// dir, as "file: import path".
func internalImports(t *testing.T, dir string) []string {
	t.Helper()
	const internal = "github.com/cim-infra/registry/internal"
	var found []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p == internal || strings.HasPrefix(p, internal+"/") {
				rel, _ := filepath.Rel(dir, path)
				found = append(found, rel+": imports "+p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
