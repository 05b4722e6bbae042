package queryservice

import (
	"flag"
	"testing"

	"github.com/cim-infra/registry/internal/config"
)

// TestDefaults: with no settings the service finds the command service's embedded server and
// listens for operations on its own port; every setting is a flag with an environment variable.
func TestDefaults(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet(ServiceName, flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := config.Parse(fs, nil); err != nil {
		t.Fatal(err)
	}
	if cfg.NATS.URL != "nats://127.0.0.1:4222" || cfg.HTTP.Addr != ":8083" {
		t.Fatalf("nats url %q, http addr %q", cfg.NATS.URL, cfg.HTTP.Addr)
	}
	if err := cfg.Options.validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	for _, name := range []string{"nats-url", "http-addr", "stream", "batch-size", "ready-max-lag", "default-wait", "max-wait", "max-in-flight", "dead-letter-stream", "dead-letter-replicas"} {
		if fs.Lookup(name) == nil {
			t.Errorf("no flag -%s", name)
		}
	}
	if cfg.Options.DeadLetter.Replicas != 1 {
		t.Errorf("-dead-letter-replicas defaults to %d, want 1", cfg.Options.DeadLetter.Replicas)
	}
	t.Setenv("MAX_WAIT", "7s")
	t.Setenv("DEAD_LETTER_REPLICAS", "3")
	var env Config
	fs = flag.NewFlagSet(ServiceName, flag.ContinueOnError)
	env.RegisterFlags(fs)
	if err := config.Parse(fs, nil); err != nil {
		t.Fatal(err)
	}
	if env.Options.MaxWait.String() != "7s" {
		t.Fatalf("MAX_WAIT=7s gave -max-wait %s", env.Options.MaxWait)
	}
	if env.Options.DeadLetter.Replicas != 3 {
		t.Fatalf("DEAD_LETTER_REPLICAS=3 gave the dead-letter stream %d replicas", env.Options.DeadLetter.Replicas)
	}
}
