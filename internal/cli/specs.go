package cli

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/cim-infra/registry/pkg/api"
)

// spec is one subcommand: the flags it defines and how they become a request.
type spec struct {
	name    string
	summary string
	// query is true for the read-only subcommands, whose reply is not a CommandReply.
	query bool
	// subject is the NATS subject of the request.
	subject string
	// operand names the one positional argument the subcommand takes after its flags (or
	// between them), such as import's FILE; empty: none.
	operand string
	// outputs are the -o formats the subcommand accepts (nil: text and json).
	outputs []string
	// define registers the subcommand's own flags on fs and returns a function that builds the
	// request from them once fs is parsed. A command's request is a pointer to its api type, so
	// that the envelope can still be completed.
	define func(fs *flag.FlagSet) func() (any, error)
}

// specs lists every subcommand, commands first, in the order of api.Commands, then the queries.
func specs() []spec {
	return append(append(commandSpecs(), querySpecs()...), importSpec())
}

// outputFormats are the -o formats sp accepts.
func (sp spec) outputFormats() []string {
	if sp.outputs == nil {
		return []string{OutputText, OutputTable, OutputJSON}
	}
	return sp.outputs
}

// commandSpecs are the subcommands of the command service.
func commandSpecs() []spec {
	return []spec{
		{name: "register", summary: "register a resource under a hostname and a type", subject: api.CommandSubject(api.CmdRegister),
			define: func(fs *flag.FlagSet) func() (any, error) {
				var r api.Register
				envelopeFlags(fs, &r.Envelope)
				fs.StringVar(&r.AggregateID, "id", "", "resource id (UUID) to register under; default: the service derives one from the command id")
				fs.StringVar(&r.Hostname, "hostname", "", "hostname (RFC 1123), such as web-01.example.com (required)")
				fs.StringVar(&r.ResourceType, "type", "", "resource type, such as virtual_machine (vm), physical_server, switch (required)")
				return func() (any, error) { return &r, required(fs, "hostname", "type") }
			}},
		targetSpec("assign-organization", "assign a resource to an organization", api.CmdAssignOrganization,
			func(fs *flag.FlagSet) (any, []string) {
				var c api.AssignOrganization
				return &c, bind(fs, &c.Target, stringFlag{&c.OrganizationID, "org", "organization id (UUID)"})
			}),
		targetSpec("assign-location", "assign a resource to a location", api.CmdAssignLocation,
			func(fs *flag.FlagSet) (any, []string) {
				var c api.AssignLocation
				return &c, bind(fs, &c.Target, stringFlag{&c.LocationID, "location", "location id (UUID)"})
			}),
		targetSpec("assign-owner", "assign the person who owns a resource", api.CmdAssignOwner,
			func(fs *flag.FlagSet) (any, []string) {
				var c api.AssignOwner
				return &c, bind(fs, &c.Target, stringFlag{&c.OwnerID, "owner", "owner's person id (UUID)"})
			}),
		targetSpec("add-policy", "attach a policy to a resource", api.CmdAddPolicy,
			func(fs *flag.FlagSet) (any, []string) {
				var c api.AddPolicy
				return &c, bind(fs, &c.Target, stringFlag{&c.PolicyID, "policy", "policy id (UUID)"})
			}),
		targetSpec("remove-policy", "detach a policy from a resource", api.CmdRemovePolicy,
			func(fs *flag.FlagSet) (any, []string) {
				var c api.RemovePolicy
				return &c, bind(fs, &c.Target, stringFlag{&c.PolicyID, "policy", "policy id (UUID)"})
			}),
		targetSpec("assign-account-concept", "link a resource to an account concept", api.CmdAssignAccountConcept,
			func(fs *flag.FlagSet) (any, []string) {
				var c api.AssignAccountConcept
				return &c, bind(fs, &c.Target, stringFlag{&c.ConceptID, "concept", "account concept id (UUID)"})
			}),
		targetSpec("clear-account-concept", "remove a resource's account concept link", api.CmdClearAccountConcept,
			func(fs *flag.FlagSet) (any, []string) {
				var c api.ClearAccountConcept
				return &c, bind(fs, &c.Target)
			}),
		{name: "set-hardware", summary: "set a resource's manufacturer, model or serial number (others unchanged)",
			subject: api.CommandSubject(api.CmdSetHardwareDetails),
			define: func(fs *flag.FlagSet) func() (any, error) {
				var c api.SetHardwareDetails
				bind(fs, &c.Target)
				fs.Var(optionalString{&c.Manufacturer}, "manufacturer", "manufacturer")
				fs.Var(optionalString{&c.Model}, "model", "model")
				fs.Var(optionalString{&c.SerialNumber}, "serial", "serial number")
				return func() (any, error) {
					if err := required(fs, "id"); err != nil {
						return nil, err
					}
					if c.Manufacturer == nil && c.Model == nil && c.SerialNumber == nil {
						return nil, usageErrorf("give at least one of --manufacturer, --model, --serial")
					}
					return &c, nil
				}
			}},
		targetSpec("assign-asset-tag", "set a resource's asset tag", api.CmdAssignAssetTag,
			func(fs *flag.FlagSet) (any, []string) {
				var c api.AssignAssetTag
				return &c, bind(fs, &c.Target, stringFlag{&c.AssetTag, "tag", "asset tag"})
			}),
		{name: "set-metadata", summary: "set one metadata key of a resource to a value",
			subject: api.CommandSubject(api.CmdUpdateMetadata),
			define: func(fs *flag.FlagSet) func() (any, error) {
				var c api.UpdateMetadata
				bind(fs, &c.Target, stringFlag{&c.Key, "key", "metadata key"})
				// An empty value is a value: only its presence is required.
				fs.StringVar(&c.Value, "value", "", "metadata value (required, may be empty)")
				return func() (any, error) {
					if err := required(fs, "id", "key"); err != nil {
						return nil, err
					}
					if !given(fs, "value") {
						return nil, usageErrorf("--value is required")
					}
					return &c, nil
				}
			}},
		targetSpec("change-status", "move a resource to provisioning, active, maintenance or decommissioned", api.CmdChangeStatus,
			func(fs *flag.FlagSet) (any, []string) {
				var c api.ChangeStatus
				return &c, bind(fs, &c.Target, stringFlag{&c.Status, "status", "new status: provisioning, active, maintenance or decommissioned"})
			}),
		{name: "get", summary: "show a resource's state: current, or as of a sequence or a time", query: true,
			subject: api.QuerySubject(api.QueryGet),
			define: func(fs *flag.FlagSet) func() (any, error) {
				var q api.Get
				var asOfTime string
				fs.StringVar(&q.AggregateID, "id", "", "resource id (required)")
				fs.Uint64Var(&q.AsOfSequence, "as-of-seq", 0, "show the state as of this stream sequence (a command's version)")
				fs.StringVar(&asOfTime, "as-of-time", "", "show the state as of this time (RFC 3339, such as 2026-05-01T12:00:00Z)")
				return func() (any, error) {
					if err := required(fs, "id"); err != nil {
						return nil, err
					}
					if given(fs, "as-of-seq") && given(fs, "as-of-time") {
						return nil, usageErrorf("give --as-of-seq or --as-of-time, not both")
					}
					if asOfTime != "" {
						t, err := time.Parse(time.RFC3339Nano, asOfTime)
						if err != nil {
							return nil, usageErrorf("--as-of-time %q is not an RFC 3339 time, such as 2026-05-01T12:00:00Z", asOfTime)
						}
						q.AsOfTime = &t
					}
					return q, nil
				}
			}},
		{name: "history", summary: "list a resource's events, oldest first, a page at a time or --all", query: true,
			subject: api.QuerySubject(api.QueryHistory),
			define: func(fs *flag.FlagSet) func() (any, error) {
				var h historyQuery
				q := &h.History
				fs.StringVar(&q.AggregateID, "id", "", "resource id (required)")
				fs.Uint64Var(&q.AfterSequence, "after", 0, "list events after this stream sequence")
				fs.IntVar(&q.Limit, "limit", 0, "page size; default the service's (100)")
				fs.BoolVar(&h.All, "all", false, "list every event, page after page")
				return func() (any, error) {
					if err := required(fs, "id"); err != nil {
						return nil, err
					}
					if q.Limit < 0 {
						return nil, usageErrorf("--limit %d is negative", q.Limit)
					}
					return h, nil
				}
			}},
	}
}

// historyQuery is the history subcommand's request: a page, or every page.
type historyQuery struct {
	api.History
	All bool `json:"-"`
}

// stringFlag is one required string flag of a command.
type stringFlag struct {
	p     *string
	name  string
	usage string
}

// targetSpec is a command on an existing resource whose flags are --id and required strings.
func targetSpec(name, summary, command string, define func(fs *flag.FlagSet) (req any, required []string)) spec {
	return spec{name: name, summary: summary, subject: api.CommandSubject(command),
		define: func(fs *flag.FlagSet) func() (any, error) {
			req, names := define(fs)
			return func() (any, error) { return req, required(fs, names...) }
		}}
}

// bind defines the envelope flags, --id and the given required string flags, and returns the
// names of the required ones.
func bind(fs *flag.FlagSet, t *api.Target, fields ...stringFlag) []string {
	envelopeFlags(fs, &t.Envelope)
	fs.StringVar(&t.AggregateID, "id", "", "resource id (required)")
	names := []string{"id"}
	for _, f := range fields {
		fs.StringVar(f.p, f.name, "", f.usage+" (required)")
		names = append(names, f.name)
	}
	return names
}

func envelopeFlags(fs *flag.FlagSet, e *api.Envelope) {
	fs.StringVar(&e.CommandID, "command-id", "", "command id, the retry key: re-send with the same id to retry safely (default: a new UUID)")
	fs.StringVar(&e.CorrelationID, "correlation-id", "", "correlation id recorded with the events (default: the command id)")
	fs.StringVar(&e.CausationID, "causation-id", "", "causation id recorded with the events")
}

// optionalString is a flag that sets a *string only when given, so that "not given" and
// "given empty" differ.
type optionalString struct{ p **string }

func (o optionalString) String() string {
	if o.p == nil || *o.p == nil {
		return ""
	}
	return **o.p
}

func (o optionalString) Set(v string) error {
	*o.p = &v
	return nil
}

func required(fs *flag.FlagSet, names ...string) error {
	var missing []string
	for _, n := range names {
		if fs.Lookup(n).Value.String() == "" {
			missing = append(missing, "--"+n)
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return usageErrorf("%s is required", missing[0])
	default:
		return usageErrorf("%s are required", strings.Join(missing, ", "))
	}
}

func given(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

// usageError is a mistake in the command line: exit code 2, and a pointer to the help.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}
