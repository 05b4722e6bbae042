// Command inventory-sync keeps the registry in step with an inventory file (CSV): it registers
// the machines the registry does not know, moves the known ones to the inventory's
// organization, location, asset tag and status, and decommissions the machines it registered
// that the inventory no longer lists. It talks to the registry through pkg/api only: a sample of
// a tool built on the public Go API.
//
//	inventory-sync -nats-url nats://127.0.0.1:4222 -file inventory.csv [-dry-run]
//
// Exit status: 0 in step, 1 the inventory or a command was refused (fix, then run again), 2 the
// registry was unavailable (run again as it is).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cim-infra/registry/pkg/api"
	"github.com/nats-io/nats.go"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("inventory-sync", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("nats-url", nats.DefaultURL, "NATS URL of the registry")
	file := fs.String("file", "inventory.csv", "inventory file (CSV with a header row)")
	dryRun := fs.Bool("dry-run", false, "print the commands without sending them")
	timeout := fs.Duration("timeout", 5*time.Second, "time allowed for each request")
	retries := fs.Int("retries", 3, "re-sends of a request the registry did not answer (same command id)")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	f, err := os.Open(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	hosts, err := ReadInventory(f)
	f.Close()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	nc, err := nats.Connect(*url, nats.Name("inventory-sync"))
	if err != nil {
		fmt.Fprintf(stderr, "connect to %s: %v\n", *url, err)
		return 2
	}
	defer nc.Close()
	client, err := api.NewClient(nc, api.WithTimeout(*timeout), api.WithRetries(*retries))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	s := &Syncer{Client: client, DryRun: *dryRun}
	rep, err := s.Sync(ctx, hosts)
	for _, a := range rep.Actions {
		fmt.Fprintln(stdout, a)
	}
	fmt.Fprintf(stdout, "registered %d, updated %d, decommissioned %d, unchanged %d\n",
		rep.Registered, rep.Updated, rep.Decommissioned, rep.Unchanged)
	if err != nil {
		fmt.Fprintln(stderr, err)
		if api.Retryable(err) {
			return 2
		}
		return 1
	}
	return 0
}
