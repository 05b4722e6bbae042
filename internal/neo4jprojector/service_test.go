package neo4jprojector

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/config"
	"github.com/cim-infra/registry/internal/neo4jtest"

	"github.com/cim-infra/registry/internal/testkit"
)

func TestFlagsAndEnvironment(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet(ServiceName, flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	env := map[string]string{"NEO4J_PASSWORD": "secret", "BATCH_SIZE": "500"}
	err := config.ParseWithLookup(fs, []string{"-neo4j-uri", "bolt://db:7687", "-rebuild"}, func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Neo4jURI != "bolt://db:7687" || cfg.Neo4jPassword != "secret" || cfg.BatchSize != 500 || !cfg.Rebuild ||
		cfg.HTTP.Addr != ":8082" || cfg.Neo4jUser != "neo4j" || cfg.NATS.URL == "" {
		t.Fatalf("config = %+v", cfg)
	}
	rc := cfg.RunnerConfig()
	if rc.Name != "neo4j" || rc.Durable != "projector-neo4j" || rc.PriorityGroup != "neo4j" ||
		rc.FilterSubject != "cim.evt.computeresource.>" || rc.BatchSize != 500 {
		t.Fatalf("runner config = %+v", rc)
	}
	for _, s := range config.Describe(fs) {
		if s.Usage == "" {
			t.Errorf("flag -%s has no usage", s.Flag)
		}
	}
}

// The service end to end: project, serve /healthz, /readyz and /metrics, stop cleanly, and
// rebuild on a second run.
func TestServiceRunsRebuildsAndStopsCleanly(t *testing.T) {
	e := newEnv(t, 31, 30)
	e.appendEvents(400)
	cfg := Config{}
	cfg.RegisterFlags(flag.NewFlagSet("test", flag.ContinueOnError))
	cfg.NATS.URL = e.srv.ClientURL()
	cfg.Neo4jURI = os.Getenv(neo4jtest.EnvURI)
	cfg.Neo4jUser = os.Getenv(neo4jtest.EnvUser)
	cfg.Neo4jPassword = os.Getenv(neo4jtest.EnvPassword)
	cfg.HTTP.Addr = testkit.FreeAddr(t)
	cfg.BatchSize = 50
	cfg.FetchWait = 100 * time.Millisecond
	cfg.PinnedTTL = 2 * time.Second

	runService := func(cfg Config) (stop func() error) {
		ctx, cancel := context.WithCancel(e.ctx)
		done := make(chan error, 1)
		go func() { done <- Run(ctx, cfg, testLog(t)) }()
		return func() error { cancel(); return <-done }
	}
	stop := runService(cfg)
	e.waitCheckpoint(e.hist.last)
	e.requireExactGraph()
	base := "http://" + cfg.HTTP.Addr
	e.waitFor("/readyz 200", func() bool { code, _ := testkit.HTTPGet(base + "/readyz"); return code == http.StatusOK })
	if _, body := testkit.HTTPGet(base + "/readyz"); !strings.Contains(body, `"role":"active"`) {
		t.Errorf("/readyz of the only replica, which applied every event = %s, want role active", body)
	}
	if code, _ := testkit.HTTPGet(base + "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}
	e.waitFor("the applied metric", func() bool {
		_, metrics := testkit.HTTPGet(base + "/metrics")
		return strings.Contains(metrics, fmt.Sprintf(`cim_projector_events_applied_total{projector="neo4j"} %d`, e.hist.last))
	})
	_, metrics := testkit.HTTPGet(base + "/metrics")
	for _, want := range []string{
		fmt.Sprintf(`cim_projector_events_applied_total{projector="neo4j"} %d`, e.hist.last),
		`cim_projector_lag_events{projector="neo4j"}`,
		`cim_projector_batch_size_count{projector="neo4j"}`,
		`cim_projector_batch_duration_seconds_count{projector="neo4j"}`,
		`cim_projector_dead_letters_total{projector="neo4j"} 0`,
		`cim_projector_active{projector="neo4j"} 1`,
		`cim_projector_up{projector="neo4j"} 1`,
		fmt.Sprintf(`cim_projector_last_applied_sequence{projector="neo4j"} %d`, e.hist.last),
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}

	// Second run with -rebuild: the graph is emptied and rebuilt from the whole stream.
	e.appendEvents(100)
	cfg.Rebuild = true
	stop = runService(cfg)
	e.waitCheckpoint(e.hist.last)
	e.waitFor("the whole stream replayed", func() bool {
		_, metrics := testkit.HTTPGet(base + "/metrics")
		return strings.Contains(metrics, fmt.Sprintf(`cim_projector_events_applied_total{projector="neo4j"} %d`, e.hist.last))
	})
	e.requireExactGraph()
	if err := stop(); err != nil {
		t.Fatalf("run with -rebuild: %v", err)
	}
}
