package api

import (
	"context"
	"fmt"
)

// List returns one page of the resources that match q (the query service).
func (c *Client) List(ctx context.Context, q List) (*ResourcePage, error) {
	return call[ResourcePage](ctx, c, QuerySubject(QueryList), q)
}

// ListAll returns every resource that matches q, asking page after page with the cursor of the
// one before; the rows are in q's order. The model may move on between the pages: see
// List.Cursor for what stays exact.
func (c *Client) ListAll(ctx context.Context, q List) ([]Resource, error) {
	var all []Resource
	for {
		page, err := c.List(ctx, q)
		if err != nil {
			return all, err
		}
		all = append(all, page.Resources...)
		if page.NextCursor == "" {
			return all, nil
		}
		if page.NextCursor == q.Cursor {
			return all, fmt.Errorf("api: list: the page after cursor %q gives the same cursor", q.Cursor)
		}
		q.Cursor = page.NextCursor
	}
}

// Count returns how many resources match q, grouped by q.By.
func (c *Client) Count(ctx context.Context, q Count) (*Counts, error) {
	return call[Counts](ctx, c, QuerySubject(QueryCount), q)
}

// Trace returns every event of one correlation id, in stream order.
func (c *Client) Trace(ctx context.Context, q Trace) (*TraceReply, error) {
	return call[TraceReply](ctx, c, QuerySubject(QueryTrace), q)
}
