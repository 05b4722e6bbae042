package main

import (
	"fmt"
	"testing"

	"github.com/cim-infra/registry/internal/servicemain/maintest"
	"github.com/cim-infra/registry/internal/testkit"
)

// TestMainStopsGracefully: SIGTERM stops the Neo4j projector through the shared lifecycle, also
// while it waits for a Neo4j that does not answer (it is alive, not ready).
func TestMainStopsGracefully(t *testing.T) {
	t.Parallel()
	neo4j := fmt.Sprintf("bolt://127.0.0.1:%d", testkit.FreePort(t))
	maintest.StopsGracefully(t, service, "/healthz", "-neo4j-uri", neo4j, "-shutdown-timeout", "15s")
}
