// Package neo4jtest connects integration tests to the real Neo4j started by scripts/neo4j-start
// (tools/neo4j-testserver) and gives each test the graph to itself.
//
// Neo4j Community has a single user database, so every test that writes to it shares one graph.
// Such tests take it with Acquire, which serialises them across the tests of one process and
// across the `go test` processes of different packages (a file lock next to the other temporary
// files), and empties the graph before handing it over. Tests that use Acquire may still call
// t.Parallel: they simply wait for each other.
//
// Without NEO4J_URI the tests skip with a message saying how to start Neo4j, except in CI
// (CI=true), where a missing Neo4j is a failure.
package neo4jtest

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

// The environment variables scripts/neo4j-start exports and Driver reads.
const (
	EnvURI      = "NEO4J_URI"      // bolt://127.0.0.1:PORT
	EnvUser     = "NEO4J_USER"     // empty: no authentication
	EnvPassword = "NEO4J_PASSWORD" // used with EnvUser
)

const howToStart = "start a test Neo4j with `source scripts/neo4j-start` from the repository root " +
	"(it exports " + EnvURI + ", " + EnvUser + ", " + EnvPassword + "), or run scripts/test"

// connectTimeout bounds the connectivity check; a loaded 2-core machine can be slow, not this slow.
const connectTimeout = 30 * time.Second

// Require skips the test unless NEO4J_URI names a Neo4j, or fails it when CI is true. A test that
// needs Neo4j calls it (or Driver, or Acquire, which call it) before it spends time on anything
// else, so that without Neo4j it ends at once with a message saying how to start one.
func Require(t testing.TB) {
	t.Helper()
	switch decide(os.Getenv(EnvURI), os.Getenv("CI")) {
	case fail:
		t.Fatalf("neo4jtest: %s is not set and CI is true, so a missing Neo4j is a failure; %s", EnvURI, howToStart)
	case skip:
		t.Skipf("neo4jtest: %s is not set, skipping a test that needs a real Neo4j; %s", EnvURI, howToStart)
	}
}

// verdict is what a test that needs Neo4j does.
type verdict int

const (
	runTest verdict = iota
	skip
	fail
)

// decide is Require's rule: run with a Neo4j; without one, skip outside CI and fail in CI (ci as
// strconv.ParseBool reads it: "true", "1", ...).
func decide(uri, ci string) verdict {
	if uri != "" {
		return runTest
	}
	if inCI, _ := strconv.ParseBool(ci); inCI {
		return fail
	}
	return skip
}

// Driver returns a driver to the Neo4j named by NEO4J_URI, NEO4J_USER and NEO4J_PASSWORD, checked
// to be reachable and closed when the test ends. Without NEO4J_URI it skips the test, or fails it
// when CI is true (see Require). It does not serialise access to the graph: use Acquire for that.
func Driver(t testing.TB) neo4j.DriverWithContext {
	t.Helper()
	Require(t)
	uri := os.Getenv(EnvURI)
	auth := neo4j.NoAuth()
	if user := os.Getenv(EnvUser); user != "" {
		auth = neo4j.BasicAuth(user, os.Getenv(EnvPassword), "")
	}
	driver, err := neo4j.NewDriverWithContext(uri, auth)
	if err != nil {
		t.Fatalf("neo4jtest: driver for %s=%q: %v", EnvURI, uri, err)
	}
	t.Cleanup(func() {
		if err := driver.Close(context.Background()); err != nil {
			t.Errorf("neo4jtest: close driver: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), connectTimeout)
	defer cancel()
	if err := driver.VerifyConnectivity(ctx); err != nil {
		t.Fatalf("neo4jtest: cannot reach Neo4j at %s=%q (is scripts/neo4j-start's server still running?): %v", EnvURI, uri, err)
	}
	return driver
}

// Acquire returns a driver (as Driver does) together with exclusive use of the graph until the test
// and the cleanups it registers afterwards have finished. It waits while another test, in this
// process or another one using the same server, holds the graph, then empties it with Clean.
func Acquire(t testing.TB) neo4j.DriverWithContext {
	t.Helper()
	driver := Driver(t)
	path := lockPath(os.Getenv(EnvURI))
	unlock, err := lockGraph(path, func() { t.Logf("neo4jtest: waiting for another test to release the graph (%s)", path) })
	if err != nil {
		t.Fatalf("neo4jtest: lock the graph: %v", err)
	}
	t.Cleanup(unlock)
	Clean(t, driver)
	return driver
}

// Clean empties the database: it drops every constraint and index (except the built-in token
// lookup indexes) and deletes every node and relationship. Label, relationship type and property
// key names stay known to Neo4j (they cannot be removed), but nothing uses them.
func Clean(t testing.TB, driver neo4j.DriverWithContext) {
	t.Helper()
	ctx := t.Context()
	// Constraints first: dropping one also drops the index that backs it.
	for _, name := range names(t, driver, "SHOW CONSTRAINTS YIELD name RETURN name") {
		run(t, driver, "DROP CONSTRAINT "+quoteName(name)+" IF EXISTS")
	}
	for _, name := range names(t, driver, "SHOW INDEXES YIELD name, type WHERE type <> 'LOOKUP' RETURN name") {
		run(t, driver, "DROP INDEX "+quoteName(name)+" IF EXISTS")
	}
	// In batches, so that a large graph left by a benchmark does not need one huge transaction;
	// CALL ... IN TRANSACTIONS only runs in an auto-commit transaction, hence session.Run.
	session := driver.NewSession(ctx, neo4j.SessionConfig{})
	defer session.Close(ctx)
	result, err := session.Run(ctx, "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS", nil)
	if err == nil {
		_, err = result.Consume(ctx)
	}
	if err != nil {
		t.Fatalf("neo4jtest: delete all nodes: %v", err)
	}
}

func names(t testing.TB, driver neo4j.DriverWithContext, query string) []string {
	t.Helper()
	res, err := neo4j.ExecuteQuery(t.Context(), driver, query, nil, neo4j.EagerResultTransformer)
	if err != nil {
		t.Fatalf("neo4jtest: %s: %v", query, err)
	}
	out := make([]string, 0, len(res.Records))
	for _, rec := range res.Records {
		name, _, err := neo4j.GetRecordValue[string](rec, "name")
		if err != nil {
			t.Fatalf("neo4jtest: %s: %v", query, err)
		}
		out = append(out, name)
	}
	return out
}

func run(t testing.TB, driver neo4j.DriverWithContext, query string) {
	t.Helper()
	if _, err := neo4j.ExecuteQuery(t.Context(), driver, query, nil, neo4j.EagerResultTransformer); err != nil {
		t.Fatalf("neo4jtest: %s: %v", query, err)
	}
}

// quoteName quotes a schema name for Cypher (names cannot be query parameters).
func quoteName(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

// lockPath names one lock file per server, so that tests against different servers do not wait
// for each other.
func lockPath(uri string) string {
	h := fnv.New64a()
	h.Write([]byte(uri))
	return filepath.Join(os.TempDir(), fmt.Sprintf("neo4jtest-%016x.lock", h.Sum64()))
}
