package metricsprojector

import (
	"context"
	"flag"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/config"
	"github.com/cim-infra/registry/internal/servicemain"
	"github.com/cim-infra/registry/internal/testkit"
	"github.com/rs/zerolog"
)

func TestFlagsAndEnvironment(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet(ServiceName, flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	env := map[string]string{"NATS_URL": "nats://nats:4222", "SNAPSHOT_INTERVAL": "10s", "BATCH_SIZE": "500"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if err := config.ParseWithLookup(fs, []string{"-snapshot-every", "42"}, lookup); err != nil {
		t.Fatal(err)
	}
	if cfg.NATS.URL != "nats://nats:4222" || cfg.Options.SnapshotInterval != 10*time.Second ||
		cfg.Options.BatchSize != 500 || cfg.Options.SnapshotEvery != 42 {
		t.Fatalf("config = %+v", cfg)
	}
	defaults := map[string]string{}
	for _, s := range config.Describe(fs) {
		defaults[s.Flag] = s.Default
		if s.Usage == "" {
			t.Errorf("flag -%s has no usage", s.Flag)
		}
	}
	for flagName, want := range map[string]string{"nats-url": servicemain.DefaultNATSURL, "http-addr": DefaultHTTPAddr,
		"stream": "CIM_EVENTS", "snapshot-bucket": DefaultBucket, "snapshot-interval": "30s", "snapshot-every": "10000",
		"batch-size": "256", "dead-letter-stream": "CIM_DLQ", "log-level": "info", "nats-creds": ""} {
		got, ok := defaults[flagName]
		if !ok {
			t.Errorf("no flag -%s", flagName)
		} else if got != want {
			t.Errorf("-%s default %q, want %q", flagName, got, want)
		}
	}
}

// TestServiceServesFiguresAndStopsCleanly runs the whole service: ready once caught up, figures
// on /metrics, and on cancellation a clean stop with a final snapshot.
func TestServiceServesFiguresAndStopsCleanly(t *testing.T) {
	e := newEnv(t, 18, 30)
	e.write(150)
	var cfg Config
	cfg.RegisterFlags(flag.NewFlagSet("test", flag.ContinueOnError))
	cfg.NATS.URL = e.url
	cfg.HTTP.Addr = testkit.FreeAddr(t)
	cfg.Options.FetchWait = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, zerolog.Nop()) }()

	base := "http://" + cfg.HTTP.Addr
	e.waitFor("/readyz 200", func() bool { code, _ := testkit.HTTPGet(base + "/readyz"); return code == http.StatusOK })
	if code, _ := testkit.HTTPGet(base + "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz %d", code)
	}
	var body string
	e.waitFor("figures up to the head", func() bool {
		_, body = testkit.HTTPGet(base + "/metrics")
		return strings.Contains(body, MetricStateSequence+" "+strconv.FormatUint(e.head, 10)+"\n")
	})
	for _, want := range []string{`cim_resources{category="compute",resource_type="virtual_machine",status="active"}`,
		`cim_events_total{type="ResourceRegistered"}`, `cim_projector_up{projector="metrics"} 1`, "go_goroutines"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-e.ctx.Done():
		t.Fatal("service did not stop")
	}
	if got := e.savedSequence(DefaultBucket); got != e.head {
		t.Errorf("final snapshot at %d, want %d", got, e.head)
	}
}
