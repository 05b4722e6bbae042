package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/cli"
	"github.com/cim-infra/registry/internal/commandservice"
	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// commandsPerRow is the number of commands of one row of the benchmark's file: register,
// assign_organization, assign_location, add_policy, two update_metadata, change_status.
const commandsPerRow = 7

// BenchmarkImport measures cimctl import -j 64 against the command service's own throughput at
// 64 clients, in the same run, on the same server and service: per round, b.N rows imported
// from a CSV file by the CLI (read, checked, planned, sent, progress and summary), and b.N rows'
// worth of the same seven commands sent by 64 goroutines through one api.Client, each goroutine
// a resource at a time, as import sends a row. The direct side runs twice: with the command
// ids the client fills in (HeaderNewCommandID: the service looks nothing up), as import sends a
// new resource's commands, the cheapest way to send a command and the service's own throughput
// (import-vs-service is import over it); and with every command id chosen by the sender, which
// the service looks up in its results bucket (import-vs-service-own-ids).
//
//	go test -run '^$' -bench BenchmarkImport -benchtime 2000x ./internal/cli/
func BenchmarkImport(b *testing.B) {
	url := startCommandService(b)
	client, err := api.NewClient(natstest.Connect(b, url), api.WithTimeout(30*time.Second), api.WithRetries(2))
	if err != nil {
		b.Fatal(err)
	}
	org, loc, pol := uuid.NewString(), uuid.NewString(), uuid.NewString()
	dir := b.TempDir()
	const rounds = 3
	var imported, ownIDs, newIDs time.Duration
	for round := range rounds {
		// The import.
		var file strings.Builder
		file.WriteString("hostname,resource_type,status,organization_id,location_id,policies,metadata\n")
		for i := range b.N {
			fmt.Fprintf(&file, "imp-%d-%d.example.com,vm,active,%s,%s,%s,rack=r%d;env=prod\n", round, i, org, loc, pol, i%40)
		}
		path := filepath.Join(dir, fmt.Sprintf("round-%d.csv", round))
		if err := os.WriteFile(path, []byte(file.String()), 0o600); err != nil {
			b.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		c := &cli.CLI{Stdout: &stdout, Stderr: &stderr, LookupEnv: func(k string) (string, bool) { return url, k == "NATS_URL" }}
		start := time.Now()
		code := c.Run(context.Background(), []string{"import", path, "-j", "64", "-o", "json", "--timeout", "30s"})
		imported += time.Since(start)
		var sum struct {
			Failed  int `json:"failed"`
			Written int `json:"commands_written"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &sum); code != 0 || err != nil || sum.Failed != 0 || sum.Written != b.N*commandsPerRow {
			b.Fatalf("import: exit %d, summary %s (%v)\n%s", code, stdout.String(), err, stderr.String())
		}
		// The same commands, sent directly.
		ownIDs += sendDirect(b, client, fmt.Sprintf("own-%d", round), org, loc, pol, true)
		newIDs += sendDirect(b, client, fmt.Sprintf("new-%d", round), org, loc, pol, false)
	}
	commands := float64(rounds * b.N * commandsPerRow)
	b.ReportMetric(commands/imported.Seconds(), "import-cmd/s")
	b.ReportMetric(commands/newIDs.Seconds(), "service-cmd/s")
	b.ReportMetric(commands/ownIDs.Seconds(), "service-own-ids-cmd/s")
	b.ReportMetric(newIDs.Seconds()/imported.Seconds(), "import-vs-service")
	b.ReportMetric(ownIDs.Seconds()/imported.Seconds(), "import-vs-service-own-ids")
	b.ReportMetric(0, "ns/op")
}

// sendDirect sends b.N resources' worth of an import row's commands by 64 goroutines, and
// returns how long that took.
func sendDirect(b *testing.B, client *api.Client, prefix, org, loc, pol string, ownIDs bool) time.Duration {
	ctx := context.Background()
	env := func() api.Envelope {
		if ownIDs {
			return api.Envelope{CommandID: uuid.NewString()}
		}
		return api.Envelope{}
	}
	var wg sync.WaitGroup
	start := time.Now()
	for w := range 64 {
		wg.Go(func() {
			for i := w; i < b.N; i += 64 {
				id := uuid.NewString()
				t := func() api.Target { return api.Target{Envelope: env(), AggregateID: id} }
				steps := []struct {
					subject string
					req     any
				}{
					{api.CmdRegister, &api.Register{Envelope: env(), AggregateID: id, Hostname: fmt.Sprintf("%s-%d.example.com", prefix, i), ResourceType: "vm"}},
					{api.CmdAssignOrganization, &api.AssignOrganization{Target: t(), OrganizationID: org}},
					{api.CmdAssignLocation, &api.AssignLocation{Target: t(), LocationID: loc}},
					{api.CmdAddPolicy, &api.AddPolicy{Target: t(), PolicyID: pol}},
					{api.CmdUpdateMetadata, &api.UpdateMetadata{Target: t(), Key: "env", Value: "prod"}},
					{api.CmdUpdateMetadata, &api.UpdateMetadata{Target: t(), Key: "rack", Value: fmt.Sprintf("r%d", i%40)}},
					{api.CmdChangeStatus, &api.ChangeStatus{Target: t(), Status: "active"}},
				}
				for _, s := range steps {
					var reply api.CommandReply
					if err := client.Do(ctx, api.CommandSubject(s.subject), s.req, &reply); err != nil || len(reply.Events) != 1 {
						b.Errorf("%s: %v (%+v)", s.subject, err, reply)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	return time.Since(start)
}

// startCommandService runs the command service alone, without unique keys, on an embedded
// JetStream server, and returns the server's URL: the benchmark measures import against the
// service, with nothing else on the machine's two cores.
func startCommandService(t testing.TB) string {
	t.Helper()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv.ClientURL())
	svc, err := commandservice.New(context.Background(), nc, jetstore.Config{}, commandservice.DefaultOptions(),
		zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("command service: %v", err)
	}
	t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
	return srv.ClientURL()
}
