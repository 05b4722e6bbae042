// Command projector-neo4j projects the compute resource events of the event stream into a Neo4j
// graph (docs/graph-model.md). Run "projector-neo4j -h" for its settings; every flag can also be
// given as an environment variable (-neo4j-password as NEO4J_PASSWORD). "projector-neo4j
// -rebuild" empties the projected graph and replays the whole stream before going on live.
package main

import (
	"context"

	"github.com/cim-infra/registry/internal/neo4jprojector"
	"github.com/cim-infra/registry/internal/servicemain"
	"github.com/rs/zerolog"
)

func main() {
	var cfg neo4jprojector.Config
	servicemain.Main(servicemain.Service{
		Name:          neo4jprojector.ServiceName,
		RegisterFlags: cfg.RegisterFlags,
		Logger:        func(name string) (zerolog.Logger, error) { return cfg.Log.Logger(name) },
		Run:           func(ctx context.Context, log zerolog.Logger) error { return neo4jprojector.Run(ctx, cfg, log) },
	})
}
