package main

import (
	"testing"

	"github.com/cim-infra/registry/internal/servicemain/maintest"
)

// TestMainStopsGracefully: SIGTERM stops the query service through the shared lifecycle once its model
// has caught up with the event stream.
func TestMainStopsGracefully(t *testing.T) {
	t.Parallel()
	maintest.StopsGracefully(t, service, "/readyz", "-shutdown-timeout", "15s")
}
