// Command cimctl is the command-line client of the CIM registry's command service: it sends
// every command and query over NATS and exits non-zero by error class. Run "cimctl help".
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cim-infra/registry/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
