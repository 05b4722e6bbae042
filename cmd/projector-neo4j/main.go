// Command projector-neo4j projects the compute resource events of the event stream into a Neo4j
// graph (docs/graph-model.md). Run "projector-neo4j -h" for its settings; every flag can also be
// given as an environment variable (-neo4j-password as NEO4J_PASSWORD). "projector-neo4j
// -rebuild" empties the projected graph and replays the whole stream before going on live.
package main

import (
	"github.com/cim-infra/registry/internal/neo4jprojector"
	"github.com/cim-infra/registry/internal/servicemain"
)

// service is this command: the service's settings and body in the shared lifecycle.
var service = servicemain.New(neo4jprojector.ServiceName, neo4jprojector.Run)

func main() { service.Main() }
