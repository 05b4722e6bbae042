// Command projector-metrics keeps Prometheus figures of the CIM registry (fleet by status, type
// and category; events by type; status transitions) from the event stream, and serves them on
// /metrics with /healthz and /readyz. Every flag has an environment variable (nats-url: NATS_URL).
package main

import (
	"github.com/cim-infra/registry/internal/metricsprojector"
	"github.com/cim-infra/registry/internal/servicemain"
)

// service is this command: the service's settings and body in the shared lifecycle.
var service = servicemain.New(metricsprojector.ServiceName, metricsprojector.Run)

func main() { service.Main() }
