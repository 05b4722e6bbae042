package registrytest_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/registrytest"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// The registry answers commands, both kinds of query (the command service's get, the query
// service's list with min_sequence), holds the events in Store, and serves any client at URL.
func TestRegistryServes(t *testing.T) {
	t.Parallel()
	reg := registrytest.New(t)
	ctx := ctxFor(t)
	c := reg.Client()
	r, err := c.Register(ctx, api.Register{Hostname: "web-01.example.com", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Get(ctx, api.Get{AggregateID: r.AggregateID})
	if err != nil || res.Hostname != "web-01.example.com" {
		t.Fatalf("get = %+v, %v", res, err)
	}
	page, err := c.List(ctx, api.List{Consistency: api.Consistency{MinSequence: r.Version}})
	if err != nil || page.Total != 1 || page.Resources[0].ID != r.AggregateID {
		t.Fatalf("list = %+v, %v", page, err)
	}
	loaded, err := reg.Store().Load(ctx, registrytest.ResourceRef(r.AggregateID))
	if err != nil || len(loaded.Events) != 1 || loaded.Events[0].Type != "ResourceRegistered" || loaded.LastSequence != r.Version {
		t.Fatalf("store = %+v, %v", loaded, err)
	}

	// An independent connection, as another process would open one.
	nc, err := nats.Connect(reg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	other, err := api.NewClient(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Get(ctx, api.Get{AggregateID: r.AggregateID}); err != nil {
		t.Fatalf("get through URL: %v", err)
	}
}

// Registries of parallel tests are independent: each has its own server, ports and store.
func TestParallelRegistriesAreIndependent(t *testing.T) {
	t.Parallel()
	urls := make(chan string, 3)
	t.Run("group", func(t *testing.T) {
		for i := range 3 {
			t.Run(string(rune('a'+i)), func(t *testing.T) {
				t.Parallel()
				reg := registrytest.New(t)
				ctx := ctxFor(t)
				if _, err := reg.Client().Register(ctx, api.Register{Hostname: "same.example.com", ResourceType: "vm"}); err != nil {
					t.Fatal(err)
				}
				urls <- reg.URL()
			})
		}
	})
	close(urls)
	seen := map[string]bool{}
	for u := range urls {
		if seen[u] {
			t.Fatalf("two registries at %s", u)
		}
		seen[u] = true
	}
	if len(seen) != 3 {
		t.Fatalf("%d registries ran, want 3", len(seen))
	}
}

// Close stops everything and removes the store; a second Close is harmless, and a closed
// registry's URL no longer answers. (Not parallel: it points TMPDIR at a directory of its own.)
func TestCloseRemovesEverything(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ctx := ctxFor(t)
	reg, err := registrytest.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	url := reg.URL()
	if entries, _ := os.ReadDir(tmp); len(entries) != 1 {
		t.Fatalf("%d entries in TMPDIR while running, want the registry's directory", len(entries))
	}
	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
	if err := reg.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if nc, err := nats.Connect(url, nats.Timeout(time.Second)); err == nil {
		nc.Close()
		t.Fatalf("%s still answers after Close", url)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Fatalf("left in TMPDIR after Close: %v", entries)
	}
}

// Setups run in order with a ready client before Start returns; a failing one fails the start
// with its error, and a nil one is refused.
func TestSetup(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	var order []string
	reg := registrytest.New(t,
		registrytest.WithSetup(func(ctx context.Context, c *api.Client) error {
			order = append(order, "first")
			_, err := c.Register(ctx, api.Register{Hostname: "preloaded.example.com", ResourceType: "vm"})
			return err
		}),
		registrytest.WithSetup(func(context.Context, *api.Client) error {
			order = append(order, "second")
			return nil
		}))
	if strings.Join(order, ",") != "first,second" {
		t.Fatalf("setups ran %v", order)
	}
	// The query service may not have applied the preload yet: list from the stream's head.
	head, err := reg.Store().LastSequence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	page, err := reg.Client().List(ctx, api.List{Consistency: api.Consistency{MinSequence: head}})
	if err != nil || page.Total != 1 {
		t.Fatalf("preloaded resources: %+v, %v", page, err)
	}

	boom := errors.New("boom")
	_, err = registrytest.Start(ctx, registrytest.WithSetup(func(context.Context, *api.Client) error { return boom }))
	if !errors.Is(err, boom) {
		t.Fatalf("Start with a failing setup = %v, want %v", err, boom)
	}
	if _, err := registrytest.Start(ctx, registrytest.WithSetup(nil)); !errors.Is(err, registrytest.ErrInvalidOption) {
		t.Fatalf("Start with a nil setup = %v, want ErrInvalidOption", err)
	}
}

// WithInventory preloads a file in cimctl import's format, CSV or JSON lines; a bad row fails the
// start and names its line; a name of neither format is refused at once.
func TestWithInventory(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "hosts.csv")
	writeFile(t, csvPath, "hostname,resource_type,status,metadata\n"+
		"web-01.example.com,vm,provisioning,rack=r1\n"+
		"web-02.example.com,vm,,env=prod;rack=r2\n")
	jsonlPath := filepath.Join(dir, "more.jsonl")
	writeFile(t, jsonlPath, `{"hostname":"db-01.example.com","resource_type":"physical_server","asset_tag":"AT-1"}`+"\n")
	reg := registrytest.New(t, registrytest.WithInventory(csvPath), registrytest.WithInventory(jsonlPath))
	head, err := reg.Store().LastSequence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, err := reg.Client().ListAll(ctx, api.List{Consistency: api.Consistency{MinSequence: head}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]api.Resource{}
	for _, r := range all {
		got[r.Hostname] = r
	}
	if len(got) != 3 || got["web-02.example.com"].Metadata["env"] != "prod" || got["db-01.example.com"].AssetTag != "AT-1" {
		t.Fatalf("preloaded: %+v", all)
	}

	bad := filepath.Join(dir, "bad.csv")
	writeFile(t, bad, "hostname,resource_type\nok-01.example.com,vm\n-bad-,vm\n")
	if _, err := registrytest.Start(ctx, registrytest.WithInventory(bad)); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("Start with a bad row = %v, want an error naming line 3", err)
	}
	if _, err := registrytest.Start(ctx, registrytest.WithInventory(filepath.Join(dir, "hosts.txt"))); !errors.Is(err, registrytest.ErrInvalidOption) {
		t.Fatalf("Start with a .txt inventory = %v, want ErrInvalidOption", err)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A start that cannot finish by ctx's deadline returns an error that says so; it does not hang.
func TestStartGivesUpAtDeadline(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := registrytest.Start(ctx)
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with a done ctx = %v, want context.Canceled", err)
	}
}

// StopServer makes requests fail as retryable; RestartServer brings the registry back with what
// it held, and a client with retries rides over a stop that ends while it retries.
func TestStopAndRestartServer(t *testing.T) {
	t.Parallel()
	reg := registrytest.New(t, registrytest.WithClientOptions(api.WithTimeout(2*time.Second)))
	ctx := ctxFor(t)
	r, err := reg.Client().Register(ctx, api.Register{Hostname: "kept.example.com", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	reg.StopServer()
	_, err = reg.Client().Get(ctx, api.Get{AggregateID: r.AggregateID})
	if !api.Retryable(err) {
		t.Fatalf("get while the server is stopped = %v, want a retryable error", err)
	}
	if err := reg.RestartServer(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := reg.Client().Get(ctx, api.Get{AggregateID: r.AggregateID})
	if err != nil || res.Hostname != "kept.example.com" {
		t.Fatalf("get after restart = %+v, %v", res, err)
	}
	if err := reg.RestartServer(ctx); err != nil {
		t.Fatalf("RestartServer of a running server: %v", err)
	}
}

// PauseServices leaves requests unanswered until the client's time-out; after ResumeServices
// the same command, sent again with its command id, is applied once.
func TestPauseServices(t *testing.T) {
	t.Parallel()
	reg := registrytest.New(t)
	ctx := ctxFor(t)
	nc := reg.Conn()
	impatient, err := api.NewClient(nc, api.WithTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	cmd := api.Register{Envelope: api.Envelope{CommandID: uuid.NewString()}, Hostname: "paused.example.com", ResourceType: "vm"}
	reg.PauseServices()
	_, err = impatient.Register(ctx, cmd)
	var e *api.Error
	if !errors.As(err, &e) || e.Kind != api.KindTimeout {
		t.Fatalf("register while paused = %v, want kind %s", err, api.KindTimeout)
	}
	reg.ResumeServices()
	r, err := reg.Client().Register(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := reg.Store().Load(ctx, registrytest.ResourceRef(r.AggregateID))
	if err != nil || len(loaded.Events) != 1 {
		t.Fatalf("events after a timed-out and a re-sent register = %+v, %v; want 1", loaded, err)
	}
}

// WithCluster runs every stream on three replicas; the registry keeps serving while one node is
// down.
func TestCluster(t *testing.T) {
	t.Parallel()
	reg := registrytest.New(t, registrytest.WithCluster())
	ctx := ctxFor(t)
	if n := strings.Count(reg.URL(), ",") + 1; n != registrytest.ClusterSize {
		t.Fatalf("URL %q names %d nodes, want %d", reg.URL(), n, registrytest.ClusterSize)
	}
	r, err := reg.Client().Register(ctx, api.Register{Hostname: "r3.example.com", ResourceType: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	for name := range reg.JetStream().StreamNames(ctx).Name() {
		s, err := reg.JetStream().Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().Config.Replicas; got != registrytest.ClusterSize {
			t.Errorf("stream %s has %d replicas, want %d", name, got, registrytest.ClusterSize)
		}
	}
	page, err := reg.Client().List(ctx, api.List{Consistency: api.Consistency{MinSequence: r.Version}})
	if err != nil || page.Total != 1 {
		t.Fatalf("list = %+v, %v", page, err)
	}

	// Every node stopped and started again: the registry answers with what it held.
	reg.StopServer()
	if err := reg.RestartServer(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := reg.Client().Get(ctx, api.Get{AggregateID: r.AggregateID})
	if err != nil || res.Hostname != "r3.example.com" {
		t.Fatalf("get after restart = %+v, %v", res, err)
	}
}

// WithMetricsProjector: the figures count what the commands did once WaitForMetrics returns.
func TestMetricsProjector(t *testing.T) {
	t.Parallel()
	reg := registrytest.New(t, registrytest.WithMetricsProjector())
	ctx := ctxFor(t)
	var last uint64
	for _, host := range []string{"a.example.com", "b.example.com"} {
		r, err := reg.Client().Register(ctx, api.Register{Hostname: host, ResourceType: "vm"})
		if err != nil {
			t.Fatal(err)
		}
		last = r.Version
	}
	if err := reg.WaitForMetrics(ctx, last); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, f := range families {
		if f.GetName() == "cim_resources" {
			for _, m := range f.GetMetric() {
				total += m.GetGauge().GetValue()
			}
		}
	}
	if total != 2 {
		t.Fatalf("cim_resources sums to %v, want 2", total)
	}

	plain := registrytest.New(t)
	if plain.Metrics() != nil {
		t.Fatal("Metrics without the projector is not nil")
	}
	if err := plain.WaitForMetrics(ctx, 1); !errors.Is(err, registrytest.ErrInvalidOption) {
		t.Fatalf("WaitForMetrics without the projector = %v", err)
	}
}

// Both services answer as soon as New returns: the query service too, whose endpoints reach the
// server a moment after it reports ready.
func TestServicesAnswerAtOnce(t *testing.T) {
	t.Parallel()
	for i := range 8 {
		t.Run(string(rune('a'+i)), func(t *testing.T) {
			t.Parallel()
			reg := registrytest.New(t)
			ctx := ctxFor(t)
			if _, err := reg.Client().Count(ctx, api.Count{By: api.CountByStatus}); err != nil {
				t.Fatalf("count at once: %v", err)
			}
		})
	}
}
