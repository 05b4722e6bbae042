package neo4jtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

func TestWriteAndReadBack(t *testing.T) {
	t.Parallel()
	driver := Acquire(t)
	ctx := t.Context()

	_, err := neo4j.ExecuteQuery(ctx, driver, `
		CREATE (r:ComputeResource {id: $id, hostname: $hostname, cores: $cores, tags: $tags})
		CREATE (r)-[:BELONGS_TO]->(:Organization {id: $org})`,
		map[string]any{"id": "r-1", "hostname": "db01", "cores": 16, "tags": []string{"prod", "eu"}, "org": "o-1"},
		neo4j.EagerResultTransformer)
	if err != nil {
		t.Fatalf("create: %v", err)
	}

	res, err := neo4j.ExecuteQuery(ctx, driver, `
		MATCH (r:ComputeResource {id: $id})-[:BELONGS_TO]->(o:Organization)
		RETURN r, o.id AS org`,
		map[string]any{"id": "r-1"}, neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithReadersRouting())
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if len(res.Records) != 1 {
		t.Fatalf("read %d records, want 1", len(res.Records))
	}
	node, _, err := neo4j.GetRecordValue[neo4j.Node](res.Records[0], "r")
	if err != nil {
		t.Fatalf("record r: %v", err)
	}
	org, _, err := neo4j.GetRecordValue[string](res.Records[0], "org")
	if err != nil {
		t.Fatalf("record org: %v", err)
	}
	want := map[string]any{"id": "r-1", "hostname": "db01", "cores": int64(16), "tags": []any{"prod", "eu"}}
	if !equalProps(node.Props, want) || org != "o-1" || !slices.Equal(node.Labels, []string{"ComputeResource"}) {
		t.Fatalf("read back labels %v props %v org %q, want [ComputeResource] %v o-1", node.Labels, node.Props, org, want)
	}
}

func TestCleanEmptiesGraphAndSchema(t *testing.T) {
	t.Parallel()
	driver := Acquire(t)
	ctx := t.Context()
	for _, q := range []string{
		"CREATE CONSTRAINT resource_id IF NOT EXISTS FOR (r:ComputeResource) REQUIRE r.id IS UNIQUE",
		"CREATE INDEX `odd``name` IF NOT EXISTS FOR (r:ComputeResource) ON (r.status)",
		"UNWIND range(1, 1000) AS i CREATE (:ComputeResource {id: i})-[:AT]->(:Location)",
	} {
		if _, err := neo4j.ExecuteQuery(ctx, driver, q, nil, neo4j.EagerResultTransformer); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if n := count(t, driver, "MATCH (n) RETURN count(n) AS n"); n != 2000 {
		t.Fatalf("before Clean: %d nodes, want 2000", n)
	}

	Clean(t, driver)

	for q, want := range map[string]int64{
		"MATCH (n) RETURN count(n) AS n":                                      0,
		"MATCH ()-[r]->() RETURN count(r) AS n":                               0,
		"SHOW CONSTRAINTS YIELD name RETURN count(*) AS n":                    0,
		"SHOW INDEXES YIELD type WHERE type <> 'LOOKUP' RETURN count(*) AS n": 0,
		"SHOW INDEXES YIELD type WHERE type = 'LOOKUP' RETURN count(*) AS n":  2, // kept: nodes by label, relationships by type
	} {
		if n := count(t, driver, q); n != want {
			t.Errorf("after Clean, %s = %d, want %d", q, n, want)
		}
	}
}

func TestLockGraphWaitsForHolder(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "graph.lock")
	unlockFirst, err := lockGraph(path, func() { t.Error("first lock waited on a fresh file") })
	if err != nil {
		t.Fatal(err)
	}
	waiting, acquired := make(chan struct{}), make(chan func())
	go func() {
		unlock, err := lockGraph(path, func() { close(waiting) })
		if err != nil {
			t.Error(err)
		}
		acquired <- unlock
	}()
	<-waiting // the second taker found the lock held
	select {
	case <-acquired:
		t.Fatal("second lock taken while the first was held")
	default:
	}
	unlockFirst()
	if unlock := <-acquired; unlock != nil {
		unlock()
	}
}

// childEnv makes TestDriverChild do its work: only in the child processes that
// TestDriverWithoutNeo4j starts, whose outcome that test inspects.
const childEnv = "NEO4JTEST_CHILD"

func TestDriverChild(t *testing.T) {
	if os.Getenv(childEnv) != "1" {
		return
	}
	Driver(t)
	t.Log("child: Driver returned")
}

func TestDriverWithoutNeo4j(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ci       string
		wantFail bool
		want     string
	}{
		{ci: "", wantFail: false, want: "--- SKIP: TestDriverChild"},
		{ci: "false", wantFail: false, want: "--- SKIP: TestDriverChild"},
		{ci: "true", wantFail: true, want: "--- FAIL: TestDriverChild"},
		{ci: "1", wantFail: true, want: "--- FAIL: TestDriverChild"},
	} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestDriverChild$", "-test.v", "-test.count=1")
			cmd.Env = append(withoutNeo4jOrCI(os.Environ()), childEnv+"=1", "CI="+tc.ci)
			out, err := cmd.CombinedOutput()
			if failed := err != nil; failed != tc.wantFail {
				t.Fatalf("child failed=%v (%v), want %v; output:\n%s", failed, err, tc.wantFail, out)
			}
			if !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), "source scripts/neo4j-start") {
				t.Fatalf("child output lacks %q or the hint to `source scripts/neo4j-start`:\n%s", tc.want, out)
			}
		})
	}
}

func withoutNeo4jOrCI(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return name == EnvURI || name == EnvUser || name == EnvPassword || name == "CI" || name == childEnv
	})
}

func count(t *testing.T, driver neo4j.DriverWithContext, query string) int64 {
	t.Helper()
	res, err := neo4j.ExecuteQuery(t.Context(), driver, query, nil, neo4j.EagerResultTransformer)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	if len(res.Records) != 1 {
		t.Fatalf("%s: %d records, want 1", query, len(res.Records))
	}
	n, _, err := neo4j.GetRecordValue[int64](res.Records[0], "n")
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func equalProps(got, want map[string]any) bool {
	if len(got) != len(want) {
		return false
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			return false
		}
		if wl, isList := w.([]any); isList {
			gl, _ := g.([]any)
			if !slices.Equal(gl, wl) {
				return false
			}
		} else if g != w {
			return false
		}
	}
	return true
}

func TestDecide(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		uri, ci string
		want    verdict
	}{
		{"bolt://127.0.0.1:7687", "", runTest},
		{"bolt://127.0.0.1:7687", "true", runTest},
		{"", "", skip},
		{"", "false", skip},
		{"", "0", skip},
		{"", "not a bool", skip},
		{"", "true", fail},
		{"", "1", fail},
		{"", "TRUE", fail},
	} {
		if got := decide(tc.uri, tc.ci); got != tc.want {
			t.Errorf("decide(%q, %q) = %d, want %d", tc.uri, tc.ci, got, tc.want)
		}
	}
}
