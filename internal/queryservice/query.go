package queryservice

import (
	"bytes"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
)

// listPlan is a checked api.List.
type listPlan struct {
	filter *filter
	order  sortField
	desc   bool
	limit  int
	after  []byte // the cursor's row key; nil on the first page
	cursor cursorState
	// query is the filter as asked, which the next page's cursor carries the hash of (worked
	// out only for a page that has a next one).
	query api.Filter
}

func planList(q api.List) (*listPlan, error) {
	f, err := compileFilter(q.Filter)
	if err != nil {
		return nil, err
	}
	p := &listPlan{filter: f, limit: q.Limit}
	orderBy := q.OrderBy
	if orderBy == "" {
		orderBy = api.OrderHostname
	}
	name, desc := strings.CutPrefix(orderBy, "-")
	var ok bool
	if p.order, ok = sortFieldNamed(name); !ok {
		return nil, invalidField("order_by", "order_by %q is not a sort field; use one of %s, with \"-\" in front for descending",
			shorten(q.OrderBy), strings.Join(api.OrderFields(), ", "))
	}
	p.desc = desc
	switch {
	case p.limit == 0:
		p.limit = api.DefaultListLimit
	case p.limit < 0 || p.limit > api.MaxListLimit:
		e := invalidField("limit", "limit %d is out of range: 1 to %d (0 or absent: %d)", q.Limit, api.MaxListLimit, api.DefaultListLimit)
		e.Details = map[string]any{"max": api.MaxListLimit}
		return nil, e
	}
	p.cursor, p.query = cursorState{Order: orderBy}, q.Filter
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor)
		if err != nil {
			return nil, err
		}
		p.cursor.Filter = filterHash(q.Filter)
		if c.Order != p.cursor.Order || c.Filter != p.cursor.Filter {
			return nil, invalidField("cursor", "the cursor belongs to a list with another filter or order_by; send the same filter and order_by as the first page")
		}
		p.after = c.After
	}
	return p, nil
}

// list answers one page of p from view v.
func list(v View, p *listPlan) (api.ResourcePage, error) {
	rows, page, err := listRows(v, p)
	if err != nil {
		return page, err
	}
	page.Resources = make([]api.Resource, len(rows))
	for i, r := range rows {
		st, err := r.state()
		if err != nil {
			return page, err
		}
		page.Resources[i] = api.ResourceOf(st, r.version)
	}
	return page, nil
}

// encodedReply is a reply body already in its JSON form, in a buffer of replyBuffers: release
// it once the reply is sent (the connection copies what it sends).
type encodedReply struct{ buf *[]byte }

// replyBuffers holds the buffers of sent replies for the next ones, so that a page's tens of
// kilobytes are not a new allocation on every request (each one brings the next collection of
// the whole model closer).
var replyBuffers = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledReply is the largest buffer kept for another reply: larger pages are rare.
const maxPooledReply = 1 << 20

// bytes returns the reply's body, valid until release.
func (e encodedReply) bytes() []byte { return *e.buf }

// release returns the reply's buffer to replyBuffers.
func (e encodedReply) release() {
	if cap(*e.buf) <= maxPooledReply {
		*e.buf = (*e.buf)[:0]
		replyBuffers.Put(e.buf)
	}
}

// listJSON answers one page of p from view v in the JSON form of an api.ResourcePage, each row
// written by appendJSON: the bytes encoding/json writes for list's page.
func listJSON(v View, p *listPlan) (encodedReply, error) {
	rows, page, err := listRows(v, p)
	if err != nil {
		return encodedReply{}, err
	}
	size := 100
	for _, r := range rows {
		size += 2 * int(r.size)
	}
	buf := replyBuffers.Get().(*[]byte)
	out := slices.Grow((*buf)[:0], size)
	out = append(out, `{"resources":[`...)
	for i, r := range rows {
		if i > 0 {
			out = append(out, ',')
		}
		out = r.appendJSON(out)
	}
	out = append(out, `],"total":`...)
	out = strconv.AppendInt(out, int64(page.Total), 10)
	if page.NextCursor != "" {
		// base64url: nothing to escape
		out = append(out, `,"next_cursor":"`...)
		out = append(out, page.NextCursor...)
		out = append(out, '"')
	}
	out = append(out, `,"as_of_sequence":`...)
	out = strconv.AppendUint(out, page.AsOfSequence, 10)
	*buf = append(out, '}')
	return encodedReply{buf}, nil
}

// listRows finds one page of p in view v: its rows, and the page without them.
func listRows(v View, p *listPlan) ([]*resource, api.ResourcePage, error) {
	page := api.ResourcePage{Resources: []api.Resource{}, AsOfSequence: v.Sequence()}
	var rows []*resource
	var more bool
	if p.filter.lookup == nil {
		// No index narrows the filter: walk the sort index, in order, counting every match.
		err := p.filter.scan(v, p.order.name, p.desc, nil, func(r *resource) bool {
			page.Total++
			return true
		})
		if err != nil {
			return nil, page, err
		}
		err = p.filter.scan(v, p.order.name, p.desc, p.after, func(r *resource) bool {
			if len(rows) == p.limit {
				more = true
				return false
			}
			rows = append(rows, r)
			return true
		})
		if err != nil {
			return nil, page, err
		}
	} else {
		// An index gives the candidates: sort the matches in the order's order (that of their
		// keys, rowKey), then start after the cursor's key.
		var all []*resource
		err := p.filter.each(v, func(r *resource) bool {
			all = append(all, r)
			return true
		})
		if err != nil {
			return nil, page, err
		}
		page.Total = len(all)
		p.order.sortRows(all, p.desc)
		start := 0
		if p.after != nil {
			start, _ = slices.BinarySearchFunc(all, p.after, func(r *resource, after []byte) int {
				if p.desc {
					return bytes.Compare(after, rowKey(p.order, r))
				}
				return bytes.Compare(rowKey(p.order, r), after)
			})
			if start < len(all) && bytes.Equal(rowKey(p.order, all[start]), p.after) {
				start++
			}
		}
		for _, r := range all[start:] {
			if len(rows) == p.limit {
				more = true
				break
			}
			rows = append(rows, r)
		}
	}
	if more {
		c := p.cursor
		if p.after == nil {
			c.Filter = filterHash(p.query)
		}
		c.After = rowKey(p.order, rows[len(rows)-1])
		page.NextCursor = c.encode()
	}
	return rows, page, nil
}

// countBy gives a row's value of a Count.By field.
var countBy = map[string]func(*resource) string{
	api.CountByStatus:         (*resource).statusName,
	api.CountByResourceType:   (*resource).typeName,
	api.CountByCategory:       (*resource).categoryName,
	api.CountByOrganizationID: func(r *resource) string { return idOrEmpty(r.organizationID()) },
	api.CountByLocationID:     func(r *resource) string { return idOrEmpty(r.locationID()) },
}

// idOrEmpty is id's text form, empty for none.
func idOrEmpty(id [16]byte) string {
	if id == [16]byte{} {
		return ""
	}
	return uuid.UUID(id).String()
}

type countPlan struct {
	filter *filter
	by     string
	value  func(*resource) string
}

func planCount(q api.Count) (*countPlan, error) {
	if q.By == "" {
		return nil, missingField("by", "by is required: one of %s", strings.Join(api.CountFields(), ", "))
	}
	value, ok := countBy[q.By]
	if !ok {
		return nil, invalidField("by", "by %q is not a count field; use one of %s", shorten(q.By), strings.Join(api.CountFields(), ", "))
	}
	f, err := compileFilter(q.Filter)
	if err != nil {
		return nil, err
	}
	return &countPlan{filter: f, by: q.By, value: value}, nil
}

func count(v View, p *countPlan) (api.Counts, error) {
	groups := map[string]int{}
	err := p.filter.each(v, func(r *resource) bool {
		groups[p.value(r)]++
		return true
	})
	out := api.Counts{By: p.by, Groups: []api.CountGroup{}, AsOfSequence: v.Sequence()}
	if err != nil {
		return out, err
	}
	for _, value := range slices.Sorted(maps.Keys(groups)) {
		out.Groups = append(out.Groups, api.CountGroup{Value: value, Count: groups[value]})
		out.Total += groups[value]
	}
	return out, nil
}
