// Package cli is cimctl, the command-line client of the command and query services: it parses a
// command line into a request, sends it with pkg/api's Client, prints the reply as text, JSON
// (or, for list, JSON lines or CSV), and turns failures into exit codes by error class.
// cmd/cimctl only calls Run.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cim-infra/registry/internal/config"
	"github.com/cim-infra/registry/internal/natsconn"
	"github.com/cim-infra/registry/internal/tracing"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
)

// Name is the program's name, as help and messages show it.
const Name = "cimctl"

// DefaultURL is where cimctl looks for NATS without -nats-url or NATS_URL: the command
// service's embedded server.
const DefaultURL = "nats://127.0.0.1:4222"

// Output formats of -o.
const (
	OutputText = "text"
	OutputJSON = "json"
)

// CLI is cimctl with its surroundings made explicit, so that tests can run it in-process.
type CLI struct {
	Stdout, Stderr io.Writer
	// Stdin is what import reads for the file "-" (os.Stdin in Run).
	Stdin io.Reader
	// LookupEnv reads the environment behind the nats-* flags (os.LookupEnv in Run).
	LookupEnv func(string) (string, bool)
	// NewCommandID makes the command id of a command given without -command-id (uuid.NewString
	// in Run). The client, not the service, chooses it, so that its retries are safe and a
	// failure can name it for a retry by hand.
	NewCommandID func() string
	// ConnectLog receives the NATS connection's events, such as each failed attempt to connect
	// (nothing in Run: a person at a terminal gets the outcome, not the attempts).
	ConnectLog zerolog.Logger
}

// Run runs cimctl with args (without the program name) and returns the exit code.
//
// With an OTLP endpoint in the OTEL_* environment variables (see tracing.Setup), each request's
// client span is exported, and the services' spans join its trace.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	shutdown, err := tracing.Setup(ctx, Name)
	if err != nil {
		fmt.Fprintf(stderr, "cimctl: %v\n", err)
		return ExitUsage
	}
	defer func() { _ = tracing.Shutdown(shutdown) }()
	c := &CLI{Stdout: stdout, Stderr: stderr, Stdin: os.Stdin, LookupEnv: os.LookupEnv, NewCommandID: uuid.NewString}
	return c.Run(ctx, args)
}

// invocation is a parsed command line.
type invocation struct {
	spec    spec
	request any
	output  string
	timeout time.Duration
	retries int
	nats    natsconn.Config
}

// Run runs cimctl with args (without the program name) and returns the exit code.
func (c *CLI) Run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		c.usage(c.Stderr)
		return ExitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		return c.help(args[1:])
	}
	inv, err := c.parse(args)
	if errors.Is(err, flag.ErrHelp) {
		c.commandUsage(c.Stdout, inv.spec)
		return ExitOK
	}
	if err != nil {
		c.reportUsage(args, err)
		return ExitUsage
	}
	if err := c.execute(ctx, inv); err != nil {
		c.report(inv, err)
		return ExitCode(err)
	}
	return ExitOK
}

// parse turns a command line into an invocation. On flag.ErrHelp the returned invocation
// names the subcommand.
func (c *CLI) parse(args []string) (*invocation, error) {
	sp, ok := lookupSpec(args[0])
	if !ok {
		return nil, usageErrorf("unknown command %q", args[0])
	}
	inv := &invocation{spec: sp}
	fs, build := flagSet(sp, inv)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return inv, err
		}
		return nil, &usageError{msg: err.Error()}
	}
	if sp.operand != "" && fs.NArg() > 0 {
		// Flags may follow the operand: parse them too, keeping the operand first.
		operand := fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return nil, &usageError{msg: err.Error()}
		}
		if fs.NArg() > 0 {
			return nil, usageErrorf("unexpected argument %q after %s %q", fs.Arg(0), sp.operand, operand)
		}
		if err := fs.Parse([]string{operand}); err != nil {
			return nil, &usageError{msg: err.Error()}
		}
	} else if fs.NArg() > 0 {
		return nil, usageErrorf("unexpected argument %q: every value is given by a flag", fs.Arg(0))
	}
	if err := c.applyEnv(fs, &inv.nats); err != nil {
		return nil, &usageError{msg: err.Error()}
	}
	if formats := sp.outputFormats(); !slices.Contains(formats, inv.output) {
		return nil, usageErrorf("-o %q: want one of %s", inv.output, strings.Join(formats, ", "))
	}
	if inv.timeout <= 0 {
		return nil, usageErrorf("--timeout %s is not positive", inv.timeout)
	}
	if inv.retries < 0 {
		return nil, usageErrorf("--retries %d is negative", inv.retries)
	}
	req, err := build()
	if err != nil {
		return nil, err
	}
	inv.request = req
	return inv, nil
}

// flagSet builds the flag set of a subcommand: its own flags, then the ones every subcommand
// has (output, timeout, retries, NATS connection), which are stored into inv.
func flagSet(sp spec, inv *invocation) (*flag.FlagSet, func() (any, error)) {
	fs := flag.NewFlagSet(Name+" "+sp.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	build := sp.define(fs)
	formats := strings.Join(sp.outputFormats(), ", ")
	fs.StringVar(&inv.output, "o", OutputText, "output format: "+formats)
	fs.StringVar(&inv.output, "output", OutputText, "output format: "+formats)
	fs.DurationVar(&inv.timeout, "timeout", api.DefaultTimeout, "how long to wait for each attempt's reply")
	fs.IntVar(&inv.retries, "retries", 2, "attempts after the first when NATS cannot be reached or the service is unavailable or silent (same command id)")
	inv.nats = natsconn.Config{URL: DefaultURL, Name: Name}
	inv.nats.RegisterFlags(fs)
	return fs, build
}

// applyEnv sets every nats-* flag not given on the command line from its environment variable,
// the way the services read theirs. Only those: cimctl's field flags have no variable (a shell
// sets HOSTNAME, which must not become -hostname).
func (c *CLI) applyEnv(fs *flag.FlagSet, cfg *natsconn.Config) error {
	givenEnv := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { givenEnv[config.EnvName(f.Name)] = true })
	natsFlags := flag.NewFlagSet("nats", flag.ContinueOnError)
	natsFlags.SetOutput(io.Discard)
	cfg.RegisterFlags(natsFlags) // binds the same fields, with their current values as defaults
	return config.ParseWithLookup(natsFlags, nil, func(name string) (string, bool) {
		if givenEnv[name] || c.LookupEnv == nil {
			return "", false
		}
		return c.LookupEnv(name)
	})
}

func lookupSpec(name string) (spec, bool) {
	for _, sp := range specs() {
		if sp.name == name {
			return sp, true
		}
	}
	return spec{}, false
}

// execute connects, sends the request and prints the reply. Connecting is retried as the
// request is (--retries), --nats-reconnect-wait apart, while no NATS server answers.
func (c *CLI) execute(ctx context.Context, inv *invocation) error {
	cfg := inv.nats
	cfg.ConnectAttempts = 1 + inv.retries
	nc, err := natsconn.Connect(ctx, cfg, c.ConnectLog)
	if err != nil {
		return &connectError{err: err}
	}
	defer nc.Close()
	opts := []api.ClientOption{api.WithTimeout(inv.timeout), api.WithRetries(inv.retries)}
	if c.NewCommandID != nil {
		opts = append(opts, api.WithCommandIDs(c.NewCommandID))
	}
	client, err := api.NewClient(nc, opts...)
	if err != nil {
		return err
	}
	var reply any
	switch req := inv.request.(type) {
	case importRequest:
		return c.runImport(ctx, client, inv, req)
	case api.Get:
		reply, err = client.Get(ctx, req)
	case listQuery:
		page := &api.ResourcePage{}
		if req.All {
			page.Resources, err = client.ListAll(ctx, req.List)
			page.Total = len(page.Resources)
		} else {
			page, err = client.List(ctx, req.List)
		}
		if err != nil {
			return err
		}
		return renderList(c.Stdout, inv.output, page)
	case api.Count:
		reply, err = client.Count(ctx, req)
	case api.Trace:
		reply, err = client.Trace(ctx, req)
	case historyQuery:
		if req.All {
			var events []api.HistoryEvent
			events, err = client.AllHistory(ctx, req.History)
			reply = &api.HistoryPage{AggregateID: req.AggregateID, Events: events}
		} else {
			reply, err = client.History(ctx, req.History)
		}
	default:
		var r api.CommandReply
		err = client.Do(ctx, inv.spec.subject, req, &r)
		reply = &r
	}
	if err != nil {
		return err
	}
	return render(c.Stdout, inv.output, reply)
}
