package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cim-infra/registry/internal/config"
	"github.com/cim-infra/registry/internal/natsconn"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/nats-io/nats.go"
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

// Kinds of the errors cimctl finds itself, before or without a reply of the service. With -o json
// they are printed in the shape of the service's error body (api.Error), beside pkg/api's kinds;
// the code is the one whose exit code the failure has. A request over the NATS server's max
// payload is api.KindRequestTooLarge, the kind the service gives a body over its own limit.
const (
	KindUsage           = "usage"            // 400: a wrong command line
	KindInvalidSettings = "invalid_settings" // 400: NATS settings (flags or environment) that cannot work
	KindNATSUnreachable = "nats_unreachable" // 503: no NATS server answered, in 1 + --retries attempts
	KindNATSRefused     = "nats_refused"     // 500: a NATS server refused the connection (authentication, TLS)
	KindInterrupted     = "interrupted"      // 500: interrupted (SIGINT, SIGTERM) before the reply
	KindClientError     = "client_error"     // 500: anything else, such as a reply cimctl cannot read
	KindRowsFailed      = "rows_failed"      // exit code 6: import read its file to the end, and some rows failed
)

// ExitCode maps an error of a run to its exit code, the one of its code (see errorBody).
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var rows *rowsFailedError
	if errors.As(err, &rows) {
		return ExitRowsFailed
	}
	switch errorBody(err).Code {
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

// connectError is a failure to open the connection to NATS.
type connectError struct{ err error }

func (e *connectError) Error() string { return e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// errorBody returns err as the service's error body: the service's own when err carries one
// (an *api.Error, including those pkg/api's client builds when no reply came), else one of the
// kinds above.
func errorBody(err error) *api.Error {
	var usage *usageError
	var envErr *config.EnvError
	var apiErr *api.Error
	var unreachable *natsconn.UnreachableError
	var connErr *connectError
	var rows *rowsFailedError
	switch {
	case errors.As(err, &rows):
		return &api.Error{Code: api.CodeInvalid, Kind: KindRowsFailed, Message: err.Error(),
			Details: map[string]any{"failed": rows.failed, "rows": rows.rows}}
	case errors.As(err, &usage):
		return &api.Error{Code: api.CodeInvalid, Kind: KindUsage, Message: err.Error()}
	case errors.As(err, &envErr) || errors.Is(err, natsconn.ErrInvalidConfig):
		return &api.Error{Code: api.CodeInvalid, Kind: KindInvalidSettings, Message: err.Error()}
	case errors.As(err, &apiErr):
		return apiErr
	case errors.Is(err, context.Canceled):
		return &api.Error{Code: api.CodeInternal, Kind: KindInterrupted, Message: err.Error()}
	case errors.As(err, &unreachable):
		return &api.Error{Code: api.CodeUnavailable, Kind: KindNATSUnreachable, Message: err.Error(),
			Details: map[string]any{"url": unreachable.Target, "attempts": unreachable.Attempts}}
	case errors.As(err, &connErr):
		return &api.Error{Code: api.CodeInternal, Kind: KindNATSRefused, Message: err.Error()}
	case errors.Is(err, nats.ErrMaxPayload):
		return &api.Error{Code: api.CodeInvalid, Kind: api.KindRequestTooLarge,
			Message: "the request is larger than the NATS server accepts (its max_payload): " + err.Error()}
	default:
		return &api.Error{Code: api.CodeInternal, Kind: KindClientError, Message: err.Error()}
	}
}

// reportUsage explains a wrong command line on stderr, as JSON when the command line asks for it.
func (c *CLI) reportUsage(args []string, err error) {
	if jsonRequested(args) {
		c.reportJSON(err)
		return
	}
	command := args[0]
	fmt.Fprintf(c.Stderr, "%s: %v\n", Name, err)
	if _, ok := lookupSpec(command); ok {
		fmt.Fprintf(c.Stderr, "Run '%s help %s' for its flags.\n", Name, command)
		return
	}
	fmt.Fprintf(c.Stderr, "Run '%s help' for the list of commands.\n", Name)
}

// jsonRequested reports whether args ask for -o json (the last -o or --output wins, as in
// package flag), for the errors found before the command line could be parsed.
func jsonRequested(args []string) bool {
	output := OutputText
	for i, arg := range args {
		if arg == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if !strings.HasPrefix(arg, "-") || (name != "o" && name != "output") {
			continue
		}
		if !hasValue && i+1 < len(args) {
			value = args[i+1]
		}
		output = value
	}
	return output == OutputJSON
}

// reportJSON prints err on stderr as one line of JSON in the shape of the service's error body.
func (c *CLI) reportJSON(err error) {
	enc := json.NewEncoder(c.Stderr)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(errorBody(err))
}

// report explains a failed request on stderr: with -o json as the service's JSON error body (or
// one of the same shape, see errorBody), else as text, with a hint where a retry may help.
func (c *CLI) report(inv *invocation, err error) {
	if inv.output == OutputJSON {
		c.reportJSON(err)
		return
	}
	var apiErr *api.Error
	isAPI := errors.As(err, &apiErr)
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
