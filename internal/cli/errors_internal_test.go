package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/cim-infra/registry/internal/config"
	"github.com/cim-infra/registry/internal/natsconn"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/nats-io/nats.go"
)

// TestErrorBodyKindsAreDocumented: every kind cimctl builds, and the kinds of pkg/api's client,
// are in docs/cli.md's table with the code cimctl gives them, and the table lists no other.
func TestErrorBodyKindsAreDocumented(t *testing.T) {
	t.Parallel()
	failures := []error{
		usageErrorf("--id is required"),
		&config.EnvError{Var: "NATS_CONNECT_TIMEOUT", Flag: "nats-connect-timeout", Value: "soon", Err: errors.New("bad")},
		&connectError{err: fmt.Errorf("%w: -nats-user", natsconn.ErrInvalidConfig)},
		&connectError{err: &natsconn.UnreachableError{Target: "nats://x", Attempts: 3, Err: nats.ErrNoServers}},
		&connectError{err: nats.ErrAuthorization},
		&connectError{err: fmt.Errorf("natsconn: connect: %w", context.Canceled)},
		fmt.Errorf("api: request: %w", context.Canceled),
		fmt.Errorf("api: request: %w", nats.ErrMaxPayload),
		errors.New("api: decode reply: unexpected end of JSON input"),
		&api.Error{Code: api.CodeUnavailable, Kind: api.KindNoResponders},
		&api.Error{Code: api.CodeUnavailable, Kind: api.KindTimeout},
		&api.Error{Code: api.CodeUnavailable, Kind: api.KindDisconnected},
		&rowsFailedError{failed: 1, rows: 2},
	}
	built := map[string]int{}
	for _, err := range failures {
		e := errorBody(err)
		if e.Message == "" && e.Kind != api.KindNoResponders && e.Kind != api.KindTimeout && e.Kind != api.KindDisconnected {
			t.Errorf("errorBody(%v) has no message", err)
		}
		if code, seen := built[e.Kind]; seen && code != e.Code {
			t.Errorf("kind %s has codes %d and %d", e.Kind, code, e.Code)
		}
		built[e.Kind] = e.Code
	}
	doc, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]int{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| (\\d{3}) \\|").FindAllSubmatch(doc, -1) {
		documented[string(m[1])], _ = strconv.Atoi(string(m[2]))
	}
	if !maps.Equal(built, documented) {
		t.Errorf("docs/cli.md's table of kinds:\n%v\nwant (what cimctl builds):\n%v", sortedKinds(documented), sortedKinds(built))
	}
}

func sortedKinds(m map[string]int) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return out
}
