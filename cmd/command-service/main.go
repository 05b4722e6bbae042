// Command command-service is the command side of the CIM registry: a NATS micro service that
// validates commands, decides them against each resource's event history and appends the events
// to JetStream, and answers state and history queries. Without -nats-url it runs its own
// embedded JetStream server (./data, 127.0.0.1:4222) and connects to it in-process. Every flag has an environment variable
// (nats-url: NATS_URL); run it with -h for the list.
package main

import (
	"github.com/cim-infra/registry/internal/commandservice"
	"github.com/cim-infra/registry/internal/servicemain"
)

// service is this command: the service's settings and body in the shared lifecycle.
var service = servicemain.New(commandservice.ServiceName, commandservice.Run)

func main() { service.Main() }
