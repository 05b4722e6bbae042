package k8s

import (
	"flag"
	"io"

	"github.com/cim-infra/registry/internal/commandservice"
	"github.com/cim-infra/registry/internal/metricsprojector"
	"github.com/cim-infra/registry/internal/neo4jprojector"
	"github.com/cim-infra/registry/internal/queryservice"
)

// binaries maps each binary of the image (the base name of a container's command) to the
// function that registers every flag it accepts: the services' own definitions, so that a flag
// renamed in the code fails these tests until the manifests follow.
var binaries = map[string]func(*flag.FlagSet){
	"command-service":   func(fs *flag.FlagSet) { new(commandservice.Config).RegisterFlags(fs) },
	"projector-metrics": func(fs *flag.FlagSet) { new(metricsprojector.Config).RegisterFlags(fs) },
	"projector-neo4j":   func(fs *flag.FlagSet) { new(neo4jprojector.Config).RegisterFlags(fs) },
	"query-service":     func(fs *flag.FlagSet) { new(queryservice.Config).RegisterFlags(fs) },
}

// flagSet returns a fresh flag set of binary, or nil if it is not one of the services.
func flagSet(binary string) *flag.FlagSet {
	register, ok := binaries[binary]
	if !ok {
		return nil
	}
	fs := flag.NewFlagSet(binary, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	register(fs)
	return fs
}

// registryImages are the repositories of the image the Dockerfile builds, as the overlays name it.
var registryImages = map[string]bool{"cim-registry": true, "ghcr.io/cim-infra/registry": true}

// goRuntimeEnv are variables the Go runtime reads (not flags), allowed in every container.
var goRuntimeEnv = map[string]bool{"GOMEMLIMIT": true, "GOMAXPROCS": true, "GOGC": true, "GODEBUG": true, "GOTRACEBACK": true}

// servicePolicy is what the deployment of one service must look like beyond the general rules.
type servicePolicy struct {
	// minReplicas and maxReplicas bound spec.replicas.
	minReplicas, maxReplicas int32
	// recreate: the old pod must be gone before the new one starts (strategy Recreate).
	recreate bool
	// egress lists the destination ports the service may reach ("UDP/53", "TCP/4222"); every one
	// must be allowed and nothing else.
	egress []string
}

var policies = map[string]servicePolicy{
	// Stateless request handling in a queue group: two or more.
	"command-service": {minReplicas: 2, maxReplicas: 100, egress: []string{"UDP/53", "TCP/53", "TCP/4222"}},
	// In-memory figures on one durable consumer: exactly one (see base/projector-metrics.yaml).
	"projector-metrics": {minReplicas: 1, maxReplicas: 1, recreate: true, egress: []string{"UDP/53", "TCP/53", "TCP/4222"}},
	// Each instance answers from a model of its own, built from the stream: two or more.
	"query-service": {minReplicas: 2, maxReplicas: 100, egress: []string{"UDP/53", "TCP/53", "TCP/4222"}},
	// One active, one standby on the pinned priority group.
	"projector-neo4j": {minReplicas: 2, maxReplicas: 2, egress: []string{"UDP/53", "TCP/53", "TCP/4222", "TCP/7687"}},
}

// Labels and namespaces the network rules are written against.
const (
	monitoringNamespace = "monitoring"
	namespaceNameLabel  = "kubernetes.io/metadata.name"
)
