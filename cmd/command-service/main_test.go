package main

import (
	"testing"

	"github.com/cim-infra/registry/internal/servicemain/maintest"
)

// TestMainStopsGracefully: SIGTERM stops the command service through the shared lifecycle.
func TestMainStopsGracefully(t *testing.T) {
	t.Parallel()
	maintest.StopsGracefully(t, service, "/readyz", "-shutdown-timeout", "15s")
}
