package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/cim-infra/registry/internal/config"
	"github.com/cim-infra/registry/internal/natsconn"
)

// help runs "cimctl help [command]".
func (c *CLI) help(args []string) int {
	if len(args) == 0 {
		c.usage(c.Stdout)
		return ExitOK
	}
	sp, ok := lookupSpec(args[0])
	if !ok {
		c.reportUsage(args, usageErrorf("unknown command %q", args[0]))
		return ExitUsage
	}
	c.commandUsage(c.Stdout, sp)
	return ExitOK
}

// usage prints the list of subcommands and what is common to them.
func (c *CLI) usage(w io.Writer) {
	fmt.Fprintf(w, `%[1]s sends commands and queries to the CIM registry's command service over NATS.

Usage:
  %[1]s <command> [flags]
  %[1]s help [command]

Commands (each writes events to one resource):
`, Name)
	all := specs()
	for _, sp := range all {
		if !sp.query && sp.operand == "" {
			fmt.Fprintf(w, "  %-24s %s\n", sp.name, sp.summary)
		}
	}
	fmt.Fprintf(w, "\nQueries:\n")
	for _, sp := range all {
		if sp.query {
			fmt.Fprintf(w, "  %-24s %s\n", sp.name, sp.summary)
		}
	}
	fmt.Fprintf(w, "\nBulk:\n")
	for _, sp := range all {
		if sp.operand != "" {
			fmt.Fprintf(w, "  %-24s %s\n", sp.name+" "+sp.operand, sp.summary)
		}
	}
	fmt.Fprintf(w, `
Other:
  %-24[1]s %[10]s

Every command takes --command-id: re-sending a command with the same id applies it at most
once. Without one, %[2]s makes one and reuses it for its own retries (--retries).

Output: readable text, or the reply's JSON with -o json.

NATS: --nats-url (or NATS_URL, default %[3]s, where the command service's
embedded server listens), and credentials and TLS flags: see '%[2]s help <command>'.

Exit codes:
  %[4]d  success
  %[5]d  other error (the service's internal error 500, NATS refusing the connection, interrupted)
  %[6]d  wrong command line or NATS settings, or input the service refused (400)
  %[7]d  no resource with that id (404)
  %[8]d  a rule of the domain refused the command, or a conflict persisted (409)
  %[9]d  NATS, the service or its store could not be reached (503): retry with the same --command-id
  %[11]d  import: some rows failed (the others were imported): fix them and run the import again
`, "help [command]", Name, DefaultURL, ExitOK, ExitError, ExitUsage, ExitNotFound, ExitConflict, ExitUnavailable, "this text, or one command's flags", ExitRowsFailed)
}

// commandUsage prints one subcommand's flags in three groups: its own, the common ones and the
// NATS connection's.
func (c *CLI) commandUsage(w io.Writer, sp spec) {
	operand := ""
	if sp.operand != "" {
		operand = " " + sp.operand
	}
	fmt.Fprintf(w, "Usage: %s %s [flags]%s\n\n%s.\n", Name, sp.name, operand, capitalize(sp.summary))

	own := flag.NewFlagSet(sp.name, flag.ContinueOnError)
	sp.define(own)
	fmt.Fprintf(w, "\nFlags:\n")
	printFlags(w, own, false)

	var inv invocation
	all, _ := flagSet(sp, &inv)
	natsFlags := flag.NewFlagSet("nats", flag.ContinueOnError)
	(&natsconn.Config{URL: DefaultURL}).RegisterFlags(natsFlags)
	common := flag.NewFlagSet("common", flag.ContinueOnError)
	all.VisitAll(func(f *flag.Flag) {
		if own.Lookup(f.Name) == nil && natsFlags.Lookup(f.Name) == nil {
			common.Var(f.Value, f.Name, f.Usage)
		}
	})
	fmt.Fprintf(w, "\nCommon flags:\n")
	printFlags(w, common, false)
	fmt.Fprintf(w, "\nNATS connection (a flag not given is read from the environment variable shown):\n")
	printFlags(w, natsFlags, true)
}

func printFlags(w io.Writer, fs *flag.FlagSet, withEnv bool) {
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "output" {
			return // shown with -o
		}
		typ, usage := flag.UnquoteUsage(f)
		if typ == "value" {
			typ = "string" // optionalString
		}
		line := "  --" + f.Name
		if f.Name == "o" {
			line = "  -o, --output"
		}
		if typ != "" {
			line += " " + typ
		}
		if withEnv {
			line += "  (" + config.EnvName(f.Name) + ")"
		}
		fmt.Fprintf(w, "%s\n      %s", line, usage)
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
