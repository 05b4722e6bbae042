// Command cimbench is the whole-system benchmark of the registry: it starts its own embedded
// NATS servers (or uses -nats-url), runs the scenarios of internal/bench, prints a progress line
// per scenario and a final table (scenario, figure, limit, ratio), and with -out writes
// report.json, table.md and SVG charts. Run "cimbench -h" for the flags; BENCHMARKS.md has a
// full run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/cim-infra/registry/internal/bench"
	"github.com/cim-infra/registry/internal/config"
)

func main() {
	bench.ServeChildIfAsked() // the memory scenario's NATS server is this binary in a child process
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx)
	stop()
	os.Exit(code)
}

func run(ctx context.Context) int {
	var cfg bench.Config
	fs := flag.NewFlagSet("cimbench", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := config.Parse(fs, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "cimbench:", err)
		return 2
	}
	cfg.Progress = os.Stderr
	log := zerolog.New(os.Stderr).With().Timestamp().Str("service", "cimbench").Logger().Level(zerolog.WarnLevel)
	rep, err := bench.Run(ctx, cfg, log)
	if rep != nil {
		fmt.Println()
		if werr := rep.WriteTable(os.Stdout); werr != nil {
			fmt.Fprintln(os.Stderr, "cimbench:", werr)
		}
		fmt.Printf("\n%d scenarios in %.0fs on %s (%d CPUs, %s; load %.2f before, %.2f after)\n", len(rep.Scenarios), rep.Seconds,
			rep.Target, rep.Machine.CPUs, rep.Machine.CPUModel, rep.Machine.LoadBefore, rep.Machine.LoadAfter)
		if cfg.Out != "" {
			fmt.Printf("report and charts in %s\n", cfg.Out)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cimbench:", err)
		return 1
	}
	return 0
}
