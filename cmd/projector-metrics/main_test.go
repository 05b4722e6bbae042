package main

import (
	"testing"

	"github.com/cim-infra/registry/internal/servicemain/maintest"
)

// TestMainStopsGracefully: SIGTERM stops the metrics projector through the shared lifecycle once it
// consumes the event stream.
func TestMainStopsGracefully(t *testing.T) {
	t.Parallel()
	maintest.StopsGracefully(t, service, "/readyz", "-shutdown-timeout", "15s")
}
