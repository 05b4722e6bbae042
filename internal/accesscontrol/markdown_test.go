package accesscontrol

import (
	"github.com/cim-infra/registry/internal/mdtable"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

const unrestricted = "everything"

// markdownRow renders one user as a row of subjects.md's permission table.
func markdownRow(u User) string {
	if u.Permissions == nil {
		return "| `" + u.Name + "` | " + unrestricted + " | | " + unrestricted + " | | — |"
	}
	p := u.Permissions
	list := func(subjects []string) string {
		quoted := make([]string, len(subjects))
		for i, s := range subjects {
			quoted[i] = "`" + s + "`"
		}
		return strings.Join(quoted, "<br>")
	}
	responses := "no"
	if p.AllowResponses {
		responses = "yes"
	}
	return "| `" + u.Name + "` | " + list(p.PublishAllow) + " | " + list(p.PublishDeny) + " | " +
		list(p.SubscribeAllow) + " | " + list(p.SubscribeDeny) + " | " + responses + " |"
}

var backticked = regexp.MustCompile("`([^`]+)`")

// parseMarkdownTable reads the permission table of the section "## Permissions" of the markdown
// file: | user | publish allow | publish deny | subscribe allow | subscribe deny | allow_responses |.
func parseMarkdownTable(t *testing.T, path string) []User {
	t.Helper()
	rows, err := mdtable.Read(path, "## Permissions")
	if err != nil {
		t.Fatal(err)
	}
	var users []User
	for _, cells := range rows {
		if len(cells) != 6 {
			t.Fatalf("%s: permission row with %d cells, want 6: %v", path, len(cells), cells)
		}
		subjects := func(cell string) []string {
			var out []string
			for _, m := range backticked.FindAllStringSubmatch(cell, -1) {
				out = append(out, m[1])
			}
			return out
		}
		name := subjects(cells[0])
		if len(name) != 1 {
			t.Fatalf("%s: no user name in %v", path, cells)
		}
		u := User{Name: name[0]}
		if strings.TrimSpace(cells[1]) != unrestricted {
			u.Permissions = &Permissions{
				PublishAllow: subjects(cells[1]), PublishDeny: subjects(cells[2]),
				SubscribeAllow: subjects(cells[3]), SubscribeDeny: subjects(cells[4]),
				AllowResponses: strings.TrimSpace(cells[5]) == "yes",
			}
		}
		users = append(users, u)
	}
	return users
}

// TestSubjectsDocumentPrintsTheTable keeps subjects.md's permission table equal to Table().
func TestSubjectsDocumentPrintsTheTable(t *testing.T) {
	const doc = "../../subjects.md"
	got := parseMarkdownTable(t, doc)
	want := Table()
	if reflect.DeepEqual(got, want) {
		return
	}
	var rows []string
	for _, u := range want {
		rows = append(rows, markdownRow(u))
	}
	t.Errorf("%s: the permission table differs from accesscontrol.Table(); its rows should be:\n%s", doc, strings.Join(rows, "\n"))
}
