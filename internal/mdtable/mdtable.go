// Package mdtable reads the first table under a heading of a Markdown file, for the tests that
// hold the reference documents (subjects.md) to the code.
package mdtable

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// Read returns the rows of the first table in the section of the line heading (a whole line,
// such as "## Permissions") of the Markdown file at path, each row as its cells with spaces trimmed, the
// header row and the separator left out. The table ends at the first line that is not a row.
func Read(path, heading string) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	depth := len(heading) - len(strings.TrimLeft(heading, "#"))
	var rows [][]string
	inSection, header, separator := false, false, false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			// The section runs to the next heading of its level or above; subsections are in it.
			if line == heading {
				inSection = true
			} else if len(line)-len(strings.TrimLeft(line, "#")) <= depth {
				inSection = false
			}
			continue
		}
		if !inSection {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			if header {
				break
			}
			continue
		}
		switch {
		case !header:
			header = true
		case !separator:
			separator = true
		default:
			cells := strings.Split(strings.Trim(line, "|"), "|")
			for i := range cells {
				cells[i] = strings.TrimSpace(cells[i])
			}
			rows = append(rows, cells)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if rows == nil {
		return nil, fmt.Errorf("mdtable: %s: no table with rows under %q", path, heading)
	}
	return rows, nil
}
