package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cim-infra/registry/internal/config"
	"github.com/cim-infra/registry/internal/natsconn"
	"github.com/cim-infra/registry/pkg/api"
)

// Exit codes, by class of failure, so that scripts can tell "fix the input" from "try again".
const (
	ExitOK          = 0 // success, including a command re-sent with an id already applied
	ExitError       = 1 // anything else: an internal error of the service (500), NATS refusing us, a cancelled run
	ExitUsage       = 2 // a wrong command line, bad NATS settings, or input the service refused (400)
	ExitNotFound    = 3 // no resource with that id (404)
	ExitConflict    = 4 // a rule of the domain refused the command, or a conflict persisted (409)
	ExitUnavailable = 5 // NATS or the service or its store could not be reached (503): retry with the same --command-id
)

// ExitCode maps an error of a run to its exit code.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var usage *usageError
	var envErr *config.EnvError
	if errors.As(err, &usage) || errors.As(err, &envErr) || errors.Is(err, natsconn.ErrInvalidConfig) {
		return ExitUsage
	}
	var apiErr *api.Error
	if errors.As(err, &apiErr) {
		switch apiErr.Code {
		case api.CodeInvalid:
			return ExitUsage
		case api.CodeNotFound:
			return ExitNotFound
		case api.CodeConflict:
			return ExitConflict
		case api.CodeUnavailable:
			return ExitUnavailable
		default:
			return ExitError
		}
	}
	var connErr *connectError
	if errors.As(err, &connErr) && connErr.unreachable() {
		return ExitUnavailable
	}
	return ExitError
}

// reportUsage explains a wrong command line on stderr.
func (c *CLI) reportUsage(command string, err error) {
	fmt.Fprintf(c.Stderr, "%s: %v\n", Name, err)
	if _, ok := lookupSpec(command); ok {
		fmt.Fprintf(c.Stderr, "Run '%s help %s' for its flags.\n", Name, command)
		return
	}
	fmt.Fprintf(c.Stderr, "Run '%s help' for the list of commands.\n", Name)
}

// report explains a failed request on stderr: as the service's JSON error body with -o json
// (when there is one), else as text, with a hint where a retry may help.
func (c *CLI) report(inv *invocation, err error) {
	var apiErr *api.Error
	isAPI := errors.As(err, &apiErr)
	if isAPI && inv.output == OutputJSON {
		enc := json.NewEncoder(c.Stderr)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(apiErr)
		return
	}
	fmt.Fprintf(c.Stderr, "%s %s: %v\n", Name, inv.spec.name, err)
	if !isAPI {
		return
	}
	if len(apiErr.Details) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(apiErr.Details)) {
			parts = append(parts, fmt.Sprintf("%s=%v", k, apiErr.Details[k]))
		}
		fmt.Fprintf(c.Stderr, "  details: %s\n", strings.Join(parts, " "))
	}
	if apiErr.Code == api.CodeUnavailable && !inv.spec.query {
		if id, ok := apiErr.Details["command_id"].(string); ok {
			applied := "the command may or may not have been applied"
			if apiErr.Kind == api.KindNoResponders {
				applied = "the command was not applied"
			}
			fmt.Fprintf(c.Stderr, "  %s: re-run it with --command-id %s, which applies it at most once\n", applied, id)
		}
	}
}
