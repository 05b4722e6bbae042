package promcheck

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/commandservice"
	"github.com/cim-infra/registry/internal/config"
	"github.com/cim-infra/registry/internal/metricsprojector"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/neo4jprojector"
	"github.com/cim-infra/registry/internal/neo4jtest"
	"github.com/cim-infra/registry/internal/testkit"
	"github.com/cim-infra/registry/internal/workload"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// service is one of the registry's services as its binary runs it: its flag set (the binary's
// own), parsed from arguments, and its Run.
type service struct {
	name string
	// start parses args with the service's flag set and runs it until ctx is done.
	start func(ctx context.Context, args []string, log zerolog.Logger) error
}

func parse(name string, register func(*flag.FlagSet), args []string) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	register(fs)
	return config.ParseWithLookup(fs, args, func(string) (string, bool) { return "", false })
}

var (
	commandService = service{"command-service", func(ctx context.Context, args []string, log zerolog.Logger) error {
		var c commandservice.Config
		if err := parse("command-service", c.RegisterFlags, args); err != nil {
			return err
		}
		return commandservice.Run(ctx, c, log)
	}}
	metricsProjector = service{"projector-metrics", func(ctx context.Context, args []string, log zerolog.Logger) error {
		var c metricsprojector.Config
		if err := parse("projector-metrics", c.RegisterFlags, args); err != nil {
			return err
		}
		return metricsprojector.Run(ctx, c, log)
	}}
	neo4jProjector = service{"projector-neo4j", func(ctx context.Context, args []string, log zerolog.Logger) error {
		var c neo4jprojector.Config
		if err := parse("projector-neo4j", c.RegisterFlags, args); err != nil {
			return err
		}
		return neo4jprojector.Run(ctx, c, log)
	}}
)

// registry is the registry's services running against one embedded NATS server.
type registry struct {
	nc      *nats.Conn
	targets []scrapeTarget // each running service's ops address, by service name
}

// startRegistry starts a JetStream server and the services, each on its own ops address, and
// waits until each is ready. projector-neo4j runs when a test Neo4j is there (NEO4J_URI, as
// neo4jtest says; under CI=true it must be).
func startRegistry(t *testing.T) *registry {
	t.Helper()
	srv := natstest.RunServer(t)
	url := srv.ClientURL()
	ctx, cancel := context.WithCancel(context.Background())
	var done []chan error
	t.Cleanup(func() {
		cancel()
		for _, d := range done {
			select {
			case err := <-d:
				if err != nil {
					t.Errorf("service stopped with %v", err)
				}
			case <-time.After(time.Minute):
				t.Error("a service did not stop within a minute of its context's end")
			}
		}
	})
	run := func(s service, args ...string) scrapeTarget {
		addr := testkit.FreeAddr(t)
		args = append([]string{"-nats-url", url, "-http-addr", addr, "-log-level", "warn"}, args...)
		d := make(chan error, 1)
		done = append(done, d)
		log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel).With().Str("service", s.name).Logger()
		go func() { d <- s.start(ctx, args, log) }()
		tg := scrapeTarget{job: s.name, addr: addr}
		waitReady(t, tg)
		return tg
	}
	r := &registry{}
	// The command service first: it creates the stream the projectors wait for.
	r.targets = append(r.targets, run(commandService, "-stream-replicas", "1"))
	r.targets = append(r.targets, run(metricsProjector, "-snapshot-replicas", "1", "-snapshot-every", "50"))
	if os.Getenv(neo4jtest.EnvURI) != "" || inCI() {
		neo4jtest.Acquire(t)
		r.targets = append(r.targets, run(neo4jProjector, "-neo4j-uri", os.Getenv(neo4jtest.EnvURI),
			"-neo4j-user", os.Getenv(neo4jtest.EnvUser), "-neo4j-password", os.Getenv(neo4jtest.EnvPassword)))
	} else {
		t.Logf("projector-neo4j not run: %s is not set (start a test Neo4j with `source scripts/neo4j-start`)", neo4jtest.EnvURI)
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	r.nc = nc
	return r
}

// waitReady polls a service's /readyz until it answers 200, for at most testkit.WaitTimeout.
func waitReady(t *testing.T, tg scrapeTarget) {
	t.Helper()
	var code int
	var body string
	if err := testkit.Poll(t.Context(), func() bool {
		code, body = testkit.HTTPGet("http://" + tg.addr + "/readyz")
		return code == http.StatusOK
	}); err != nil {
		t.Fatalf("%s not ready at %s (%v): %d %s", tg.job, tg.addr, err, code, body)
	}
}

// send sends n commands of a valid random history (workload) to the command service and
// returns how many were answered.
func (r *registry) send(t *testing.T, seed uint64, resources, n int) int {
	t.Helper()
	g := workload.New(seed, resources)
	g.Now = time.Now // the service refuses a time further than -max-clock-skew from its clock
	answered := 0
	for range n {
		cmd := g.Next()
		if cmd == nil {
			break
		}
		subject, body := workload.Request(cmd)
		data, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.nc.Request(subject, data, 10*time.Second); err != nil {
			if errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) {
				t.Errorf("command %s: %v", subject, err)
				continue
			}
			t.Fatal(err)
		}
		answered++
	}
	return answered
}

// metricsOf returns a service's /metrics as Prometheus scrapes it (text format).
func metricsOf(t *testing.T, tg scrapeTarget) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+tg.addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s /metrics: HTTP %d, %v", tg.job, resp.StatusCode, err)
	}
	return body
}
