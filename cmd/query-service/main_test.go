package main

import (
	"context"
	"testing"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/internal/servicemain/maintest"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/nats-io/nats.go/jetstream"
)

// TestMainStopsGracefully: SIGTERM stops the query service through the shared lifecycle once it
// serves the event stream.
func TestMainStopsGracefully(t *testing.T) {
	t.Parallel()
	url := natstest.RunServer(t).ClientURL()
	js, err := jetstream.New(natstest.Connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	store, err := jetstore.New(js, jetstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureStream(context.Background()); err != nil {
		t.Fatal(err)
	}
	maintest.StopsGracefully(t, service, "/readyz", "-nats-url", url, "-shutdown-timeout", "15s")
}
