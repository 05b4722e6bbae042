package mdtable

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "doc.md")
	doc := `# Doc
## Other
| a | b |
|---|---|
| wrong | table |
## Wanted
Some text.
### A subsection
| a | b |
|---|---|
| 1 | ` + "`x`" + ` |
|  2 |3|
After the table.
| not | this |
## Next
`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	rows, err := Read(path, "## Wanted")
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"1", "`x`"}, {"2", "3"}}
	if !slices.EqualFunc(rows, want, slices.Equal) {
		t.Fatalf("rows = %q, want %q", rows, want)
	}
	if _, err := Read(path, "## Next"); err == nil {
		t.Fatal("a section without a table gave no error")
	}
	if _, err := Read(path, "## Missing"); err == nil {
		t.Fatal("a missing section gave no error")
	}
}
