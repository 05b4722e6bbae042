// Command query-service answers list, count and trace queries about the CIM registry from a read
// model that each instance builds from the event stream, on NATS micro, with /healthz, /readyz
// and /metrics. Every flag has an environment variable (nats-url: NATS_URL).
package main

import (
	"github.com/cim-infra/registry/internal/queryservice"
	"github.com/cim-infra/registry/internal/servicemain"
)

// service is this command: the service's settings and body in the shared lifecycle.
var service = servicemain.New(queryservice.ServiceName, queryservice.Run)

func main() { service.Main() }
