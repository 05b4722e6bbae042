package queryservice

import (
	"testing"

	"github.com/cim-infra/registry/pkg/api"
)

// TestBadInput: every malformed or invalid request gets a 400 of the commands' shape, naming the
// field at fault; names are case-sensitive and may not repeat.
func TestBadInput(t *testing.T) {
	e := newEnv(t, 51, 10)
	e.write(20)
	e.startReady(testOptions())
	var page api.ResourcePage
	e.query(api.QueryList, api.List{Limit: 1}, &page)
	if page.NextCursor == "" {
		t.Fatal("no cursor to test with")
	}
	cases := []struct {
		name, endpoint, body string
		kind, field          string
	}{
		{"empty", api.QueryList, "", "empty_request", ""},
		{"blank", api.QueryList, "  \n", "empty_request", ""},
		{"not JSON", api.QueryList, "{", "malformed_json", ""},
		{"an array", api.QueryList, "[]", "malformed_json", ""},
		{"two values", api.QueryList, "{} {}", "malformed_json", ""},
		{"unknown field", api.QueryList, `{"nope":1}`, "unknown_field", "nope"},
		{"case-changed field", api.QueryList, `{"HOSTNAME":"a.example.com"}`, "unknown_field", "HOSTNAME"},
		{"case-changed field in count", api.QueryCount, `{"By":"status"}`, "unknown_field", "By"},
		{"duplicate field", api.QueryList, `{"hostname":"a.example.com","hostname":"b.example.com"}`, "duplicate_field", "hostname"},
		{"duplicate field in trace", api.QueryTrace, `{"correlation_id":"x","correlation_id":"y"}`, "duplicate_field", "correlation_id"},
		{"invalid UTF-8", api.QueryList, "{\"q\":\"\xff\"}", "malformed_json", ""},
		{"wrong type", api.QueryList, `{"limit":"ten"}`, "invalid_field", "limit"},
		{"wrong element type", api.QueryList, `{"status":[1]}`, "invalid_field", "status"},
		{"negative min_sequence", api.QueryList, `{"min_sequence":-1}`, "invalid_field", "min_sequence"},
		{"negative wait", api.QueryList, `{"min_sequence":1,"wait_ms":-5}`, "invalid_field", "wait_ms"},
		{"bad time", api.QueryList, `{"created_after":"yesterday"}`, "invalid_field", "created_after"},
		{"bad status", api.QueryList, `{"status":["active","bogus"]}`, "invalid_field", "status"},
		{"bad type", api.QueryList, `{"resource_type":["toaster"]}`, "invalid_field", "resource_type"},
		{"bad category", api.QueryCount, `{"by":"status","category":["kitchen"]}`, "invalid_field", "category"},
		{"bad organization", api.QueryList, `{"organization_id":["x"]}`, "invalid_field", "organization_id"},
		{"bad location", api.QueryList, `{"location_id":["x"]}`, "invalid_field", "location_id"},
		{"bad owner", api.QueryList, `{"owner_id":["x"]}`, "invalid_field", "owner_id"},
		{"bad account concept", api.QueryList, `{"account_concept_id":["x"]}`, "invalid_field", "account_concept_id"},
		{"bad policy", api.QueryList, `{"policy_id":["x"]}`, "invalid_field", "policy_id"},
		{"bad glob", api.QueryList, `{"hostname_glob":"[a"}`, "invalid_field", "hostname_glob"},
		{"metadata without key", api.QueryList, `{"metadata":["=v"]}`, "invalid_field", "metadata"},
		{"limit too large", api.QueryList, `{"limit":1001}`, "invalid_field", "limit"},
		{"negative limit", api.QueryList, `{"limit":-1}`, "invalid_field", "limit"},
		{"bad order", api.QueryList, `{"order_by":"colour"}`, "invalid_field", "order_by"},
		{"bad cursor", api.QueryList, `{"cursor":"abc"}`, "invalid_field", "cursor"},
		{"cursor of another filter", api.QueryList, `{"limit":1,"status":["active"],"cursor":"` + page.NextCursor + `"}`, "invalid_field", "cursor"},
		{"cursor of another order", api.QueryList, `{"limit":1,"order_by":"-hostname","cursor":"` + page.NextCursor + `"}`, "invalid_field", "cursor"},
		{"count without by", api.QueryCount, `{}`, "missing_field", "by"},
		{"bad by", api.QueryCount, `{"by":"colour"}`, "invalid_field", "by"},
		{"trace without id", api.QueryTrace, `{}`, "missing_field", "correlation_id"},
		{"bad trace id", api.QueryTrace, `{"correlation_id":"x"}`, "invalid_field", "correlation_id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			apiErr := e.queryError(c.endpoint, []byte(c.body))
			if apiErr.Code != api.CodeInvalid || apiErr.Kind != c.kind || apiErr.Field != c.field || apiErr.Message == "" {
				t.Fatalf("%s %s: %+v, want 400 %s field %q", c.endpoint, c.body, apiErr, c.kind, c.field)
			}
		})
	}
	// The cursor of the first page still works with its own list.
	var next api.ResourcePage
	e.query(api.QueryList, []byte(`{"limit":1,"cursor":"`+page.NextCursor+`"}`), &next)
	if len(next.Resources) != 1 || next.Resources[0].ID == page.Resources[0].ID {
		t.Fatalf("second page %+v", next)
	}
	// Too large a body.
	big := make([]byte, 70*1024)
	for i := range big {
		big[i] = ' '
	}
	big[0], big[len(big)-1] = '{', '}'
	if apiErr := e.queryError(api.QueryList, big); apiErr.Kind != "request_too_large" {
		t.Fatalf("a 70 KB body: %+v", apiErr)
	}
}
