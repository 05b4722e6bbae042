package k8s

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// memCopy copies the manifests (base and overlays) into an in-memory file system under /k, so
// that a test can change a file and render as kubectl apply -k would.
func memCopy(t *testing.T) filesys.FileSystem {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	for _, dir := range append([]string{"base"}, overlays...) {
		err := fs.WalkDir(os.DirFS("."), dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return mem.WriteFile(path.Join("/k", p), data)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return mem
}

// mutation is a mistake made in a copy of the sources, and what the checks must say about it.
type mutation struct {
	name     string
	file     string // under deploy/k8s
	old, new string // old must occur in file
	overlay  string // rendered, "dev" if empty
	want     string // a substring of one reported problem
}

var mutations = []mutation{
	{
		name: "misspelt field", file: "base/command-service.yaml",
		old: "readOnlyRootFilesystem: true", new: "readOnlyRootFileSystem: true",
		want: `unknown field "spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem"`,
	},
	{
		name: "field at the wrong level", file: "base/projector-neo4j.yaml",
		old: "      automountServiceAccountToken: false", new: "      automountServiceAccountToken: false\n      runAsNonRoot: true",
		want: "unknown field",
	},
	{
		name: "misspelt PodMonitor field", file: "base/podmonitor.yaml",
		old: "podMetricsEndpoints:", new: "podMetricEndpoints:",
		want: `unknown field "spec.podMetricEndpoints"`,
	},
	{
		name: "privileged container", file: "base/command-service.yaml",
		old: "allowPrivilegeEscalation: false", new: "allowPrivilegeEscalation: false\n            privileged: true",
		want: "pod security restricted: privileged",
	},
	{
		name: "capabilities kept", file: "base/projector-metrics.yaml",
		old: "drop: [ALL]", new: "drop: [NET_RAW]",
		want: "unrestricted capabilities",
	},
	{
		name: "seccomp unset", file: "dev/nats.yaml",
		old: "          type: RuntimeDefault\n", new: "          type: Unconfined\n",
		want: "seccompProfile",
	},
	{
		name: "writable root filesystem", file: "base/projector-neo4j.yaml",
		old: "readOnlyRootFilesystem: true", new: "readOnlyRootFilesystem: false",
		want: "readOnlyRootFilesystem must be true",
	},
	{
		name: "wrong readiness path", file: "base/command-service.yaml",
		old: "path: /readyz", new: "path: /ready",
		want: `readiness probe path "/ready"`,
	},
	{
		name: "probe on another port", file: "base/projector-metrics.yaml",
		old: "              path: /healthz\n              port: http", new: "              path: /healthz\n              port: 9090",
		want: "liveness probe port 9090",
	},
	{
		name: "container port not served", file: "base/projector-neo4j.yaml",
		old: "containerPort: 8082", new: "containerPort: 8080",
		want: "container port http 8080: projector-neo4j serves only 8082",
	},
	{
		name: "http address moved without the port", file: "base/projector-metrics.env",
		old: "HTTP_ADDR=:8081", new: "HTTP_ADDR=:9091",
		want: "serves only 9091",
	},
	{
		name: "unknown environment variable", file: "base/command-service.env",
		old: "STREAM_REPLICAS=3", new: "STREAM_REPLICAS=3\nSTREAM_REPLICA=3",
		want: "environment variable STREAM_REPLICA (from ConfigMap command-service-",
	},
	{
		name: "variable of another service", file: "base/projector-metrics.env",
		old: "SNAPSHOT_REPLICAS=3", new: "SNAPSHOT_REPLICAS=3\nNEO4J_URI=bolt://x:7687",
		want: "environment variable NEO4J_URI",
	},
	{
		name: "invalid value", file: "dev/kustomization.yaml",
		old: "- STREAM_REPLICAS=1", new: "- STREAM_REPLICAS=one",
		want: "command-service refuses its settings",
	},
	{
		name: "unknown flag", file: "base/command-service.yaml",
		old: "command: [/usr/local/bin/command-service]", new: "command: [/usr/local/bin/command-service, -nats-ur=nats://x:4222]",
		want: "flag provided but not defined: -nats-ur",
	},
	{
		name: "unknown binary", file: "base/projector-neo4j.yaml",
		old: "command: [/usr/local/bin/projector-neo4j]", new: "command: [/usr/local/bin/projector-graph]",
		want: `"projector-graph" is not a binary of the image`,
	},
	{
		name: "password in a ConfigMap", file: "base/common.env",
		old: "LOG_LEVEL=info", new: "LOG_LEVEL=info\nNATS_PASSWORD=hunter2",
		want: "holds credential NATS_PASSWORD",
	},
	{
		name: "secret rendered", file: "dev/kustomization.yaml",
		old: "configMapGenerator:", new: "secretGenerator:\n  - name: cim-neo4j\n    literals: [password=dev]\nconfigMapGenerator:",
		want: "Secret cim-neo4j-",
	},
	{
		name: "requests below limits", file: "base/command-service.yaml",
		old: "            requests:\n              cpu: 500m", new: "            requests:\n              cpu: 100m",
		want: "cpu request 100m differs from limit 500m",
	},
	{
		name: "GOMEMLIMIT above the limit", file: "base/projector-metrics.yaml",
		old: "value: 230MiB", new: "value: 300MiB",
		want: "GOMEMLIMIT 300MiB",
	},
	{
		name: "grace period shorter than the shutdown", file: "base/command-service.yaml",
		old: "terminationGracePeriodSeconds: 30", new: "terminationGracePeriodSeconds: 10",
		want: "is not longer than -shutdown-timeout",
	},
	{
		name: "PDB selects nothing", file: "base/command-service.yaml",
		old: "  maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: command-service", new: "  maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: command-svc",
		want: "PodDisruptionBudget command-service: selector",
	},
	{
		name: "PDB blocks drains", file: "base/projector-metrics.yaml",
		old: "spec:\n  maxUnavailable: 1", new: "spec:\n  minAvailable: 1",
		want: "allows no disruption",
	},
	{
		name: "second metrics projector", file: "base/projector-metrics.yaml",
		old: "replicas: 1", new: "replicas: 2",
		want: "2 replicas, want 1 to 1",
	},
	{
		name: "Service selects nothing", file: "dev/neo4j.yaml",
		old: "  clusterIP: None\n  selector:\n    app.kubernetes.io/name: neo4j", new: "  clusterIP: None\n  selector:\n    app.kubernetes.io/name: neo5j",
		want: "Service neo4j: selector",
	},
	{
		name: "Service target port missing", file: "dev/nats.yaml",
		old: "targetPort: client", new: "targetPort: nats",
		want: "target nats is no container port",
	},
	{
		name: "spread constraint counting other pods", file: "base/command-service.yaml",
		old:  "          topologyKey: kubernetes.io/hostname\n          whenUnsatisfiable: DoNotSchedule\n          labelSelector:\n            matchLabels:\n              app.kubernetes.io/name: command-service",
		new:  "          topologyKey: kubernetes.io/hostname\n          whenUnsatisfiable: DoNotSchedule\n          labelSelector:\n            matchLabels:\n              app.kubernetes.io/name: projector-neo4j",
		want: "topology spread on kubernetes.io/hostname",
	},
	{
		name: "metrics open to every namespace", file: "base/networkpolicies.yaml",
		old: "        - namespaceSelector:\n            matchLabels:\n              kubernetes.io/metadata.name: monitoring\n", new: "        - namespaceSelector: {}\n",
		want: "lets in more than Prometheus",
	},
	{
		name: "egress to any port", file: "base/networkpolicies.yaml",
		old: "  egress:\n    - ports:\n        - protocol: TCP\n          port: 7687", new: "  egress:\n    - {}",
		want: "reach every port",
	},
	{
		name: "no default deny", file: "base/networkpolicies.yaml",
		old: "  podSelector: {}\n  policyTypes: [Ingress, Egress]\n", new: "  podSelector: {}\n  policyTypes: [Ingress]\n",
		want: "no default-deny NetworkPolicy",
	},
	{
		name: "NetworkPolicy peer selects nothing", file: "dev/networkpolicies.yaml",
		old: "              app.kubernetes.io/name: projector-neo4j", new: "              app.kubernetes.io/name: projector-graph",
		want: "ingress peer app.kubernetes.io/name=projector-graph selects no pod",
	},
	{
		name: "PodMonitor on a wrong path", file: "base/podmonitor.yaml",
		old: "path: /metrics", new: "path: /metric",
		want: `path "/metric"`,
	},
	{
		name: "PodMonitor on a missing port", file: "base/podmonitor.yaml",
		old: "- port: http", new: "- port: metrics",
		want: `port "metrics" is no port`,
	},
	{
		name: "ConfigMap missing", file: "base/projector-metrics.yaml",
		old: "                name: projector-metrics\n", new: "                name: projector-metric\n",
		want: "no ConfigMap projector-metric",
	},
	{
		name: "base renames the image", file: "base/kustomization.yaml",
		old: "configMapGenerator:", new: "images:\n  - name: cim-registry\n    newName: ghcr.io/cim-infra/registry\n    newTag: latest\nconfigMapGenerator:",
		want: "image ghcr.io/cim-infra/registry:latest, the overlay's images: entry sets cim-registry to cim-registry:dev",
	},
	{
		name: "prod image not applied", file: "prod/kustomization.yaml", overlay: "prod",
		old: "  - name: cim-registry\n    newName: ghcr.io", new: "  - name: cim-registy\n    newName: ghcr.io",
		want: "no images: entry for cim-registry",
	},
	{
		name: "latest tag", file: "prod/kustomization.yaml", overlay: "prod",
		old: "newTag: v0.1.0", new: "newTag: latest",
		want: "pin a tag other than latest",
	},
	{
		name: "ephemeral storage unbounded", file: "base/projector-metrics.yaml",
		old: "              memory: 256Mi\n              ephemeral-storage: 128Mi\n            limits", new: "              memory: 256Mi\n            limits",
		want: "ephemeral-storage request and limit must both be set",
	},
	{
		name: "Bolt to any address", file: "prod/kustomization.yaml", overlay: "prod",
		old: "cidr: 192.0.2.0/24", new: "cidr: 0.0.0.0/0",
		want: "NetworkPolicy projector-neo4j-bolt-egress lets Deployment projector-neo4j reach its ports at any address",
	},
	{
		name: "misspelt PrometheusRule field", file: "base/prometheusrule.yaml",
		old: "          for: 10m", new: "          four: 10m",
		want: `unknown field "spec.groups[0].rules[1].four"`,
	},
	{
		name: "prod too", file: "prod/kustomization.yaml", overlay: "prod",
		old: "- NATS_URL=nats://nats.nats.svc.cluster.local:4222", new: "- NATS_URL=nats://nats.nats.svc.cluster.local:4222\n      - NATS_TLS=true",
		want: "environment variable NATS_TLS",
	},
}

// TestChecksCatchMistakes makes each mistake in a copy of the sources, renders the copy and
// expects the checks to report it: a check that cannot fail is no check.
func TestChecksCatchMistakes(t *testing.T) {
	t.Parallel()
	t.Run("unchanged copy passes", func(t *testing.T) {
		t.Parallel()
		for _, overlay := range overlays {
			if errs := renderAndCheck(memCopy(t), overlay); len(errs) > 0 {
				t.Errorf("%s: %v", overlay, errors.Join(errs...))
			}
		}
	})
	for _, mu := range mutations {
		t.Run(mu.name, func(t *testing.T) {
			t.Parallel()
			mem := memCopy(t)
			file := path.Join("/k", mu.file)
			data, err := mem.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), mu.old) {
				t.Fatalf("%s does not contain %q: update the mutation", mu.file, mu.old)
			}
			if err := mem.WriteFile(file, []byte(strings.Replace(string(data), mu.old, mu.new, 1))); err != nil {
				t.Fatal(err)
			}
			overlay := mu.overlay
			if overlay == "" {
				overlay = "dev"
			}
			errs := renderAndCheck(mem, overlay)
			for _, err := range errs {
				if strings.Contains(err.Error(), mu.want) {
					return
				}
			}
			t.Errorf("no problem reported contains %q; reported: %v", mu.want, errors.Join(errs...))
		})
	}
}

// renderAndCheck renders an overlay of the copy under /k and returns every problem, decoding
// errors included.
func renderAndCheck(mem filesys.FileSystem, overlay string) []error {
	m, err := build(mem, path.Join("/k", overlay), overlay)
	if err != nil {
		return []error{err}
	}
	return check(m)
}
