package main

import (
	"testing"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/servicemain/maintest"
)

// TestMainStopsGracefully: SIGTERM stops the command service through the shared lifecycle.
func TestMainStopsGracefully(t *testing.T) {
	t.Parallel()
	url := natstest.RunServer(t).ClientURL()
	maintest.StopsGracefully(t, service, "/readyz", "-nats-url", url, "-shutdown-timeout", "15s")
}
