package k8s

import (
	"flag"
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cim-infra/registry/internal/config"
	"github.com/cim-infra/registry/internal/ops"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// envSource is where a container's variable comes from, and its value when known offline.
type envSource struct {
	value  string
	from   string // "value", "ConfigMap <name>", "Secret <name>/<key>", "field"
	secret bool
	ref    secretRef // when secret
}

// serviceContainer is a container running one of the services, its settings parsed by the
// service's own flag set from the container's arguments and environment.
type serviceContainer struct {
	binary      string
	fs          *flag.FlagSet
	env         map[string]envSource
	args        []string
	httpPort    int32
	metricsPath string
}

// serviceContainerOf returns the parsed settings of c, nil if c does not run the registry's
// image, or an error if it runs it with settings the binary would refuse.
func serviceContainerOf(m *manifests, w workload, c *corev1.Container) (*serviceContainer, error) {
	binary, ok := binaryOf(c)
	if !ok {
		return nil, nil
	}
	where := fmt.Sprintf("%s container %s", w, c.Name)
	fs := flagSet(binary)
	if fs == nil {
		return nil, fmt.Errorf("%s: command %v: %q is not a binary of the image (%v)", where, c.Command, binary, slices.Sorted(maps.Keys(binaries)))
	}
	env, err := resolveEnv(m, c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	args := append(slices.Clone(c.Command[1:]), c.Args...)
	lookup := func(name string) (string, bool) {
		s, ok := env[name]
		return s.value, ok
	}
	if err := config.ParseWithLookup(fs, args, lookup); err != nil {
		return nil, fmt.Errorf("%s: %s refuses its settings: %w", where, binary, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%s: %s takes no arguments, got %q", where, binary, fs.Args())
	}
	addr := fs.Lookup(ops.FlagAddr)
	if addr == nil {
		return nil, fmt.Errorf("%s: %s has no -%s flag: where does it serve %s?", where, binary, ops.FlagAddr, ops.PathHealth)
	}
	_, portText, err := net.SplitHostPort(addr.Value.String())
	if err != nil {
		return nil, fmt.Errorf("%s: -%s %q: %w", where, ops.FlagAddr, addr.Value, err)
	}
	port, err := strconv.ParseInt(portText, 10, 32)
	if err != nil || port <= 0 {
		return nil, fmt.Errorf("%s: -%s %q: want a fixed port", where, ops.FlagAddr, addr.Value)
	}
	return &serviceContainer{binary: binary, fs: fs, env: env, args: args, httpPort: int32(port), metricsPath: ops.PathMetrics}, nil
}

// resolveEnv returns a container's environment as Kubernetes builds it: envFrom first, then
// env, which wins. Secret values are not known offline and read as a placeholder.
func resolveEnv(m *manifests, c *corev1.Container) (map[string]envSource, error) {
	env := map[string]envSource{}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm := m.configMap(ef.ConfigMapRef.Name)
			if cm == nil {
				return nil, fmt.Errorf("envFrom: no ConfigMap %s", ef.ConfigMapRef.Name)
			}
			for k, v := range cm.Data {
				env[ef.Prefix+k] = envSource{value: v, from: "ConfigMap " + cm.Name}
			}
		case ef.SecretRef != nil:
			return nil, fmt.Errorf("envFrom Secret %s: its variables cannot be checked offline; name each with a secretKeyRef", ef.SecretRef.Name)
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = envSource{value: e.Value, from: "value"}
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			env[e.Name] = envSource{value: "secret-from-" + ref.Name, from: "Secret " + ref.Name + "/" + ref.Key, secret: true, ref: secretRef{ref.Name, ref.Key}}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			cm := m.configMap(ref.Name)
			if cm == nil {
				return nil, fmt.Errorf("env %s: no ConfigMap %s", e.Name, ref.Name)
			}
			env[e.Name] = envSource{value: cm.Data[ref.Key], from: "ConfigMap " + ref.Name}
		default:
			env[e.Name] = envSource{from: "field"}
		}
	}
	return env, nil
}

// credential matches the variables that carry a credential's value (not a file's path).
var credential = regexp.MustCompile(`(PASSWORD|TOKEN|SECRET)`)

// checkServiceContainers checks every container that runs the registry's image: settings the
// binary accepts, probes and ports it serves, resources, hardening, and its service's policy.
func checkServiceContainers(m *manifests) []error {
	var errs []error
	for _, w := range m.workloads() {
		for _, c := range allContainers(&w.template.Spec) {
			sc, err := serviceContainerOf(m, w, c)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if sc == nil {
				continue
			}
			where := fmt.Sprintf("%s container %s", w, c.Name)
			errs = append(errs, checkSettings(where, sc)...)
			errs = append(errs, checkPortsAndProbes(where, sc, c)...)
			errs = append(errs, checkResources(where, c)...)
			errs = append(errs, checkHardening(where, w, c)...)
			errs = append(errs, checkShutdown(where, sc, w)...)
			errs = append(errs, checkPolicy(m, w, sc)...)
		}
	}
	return errs
}

// checkSettings checks that every variable is a setting of the binary (or the Go runtime's)
// and that credentials come from Secrets only, never from a value or a ConfigMap or an argument.
func checkSettings(where string, sc *serviceContainer) []error {
	var errs []error
	settings := map[string]config.Setting{}
	for _, s := range config.Describe(sc.fs) {
		settings[s.Env] = s
	}
	for _, name := range slices.Sorted(maps.Keys(sc.env)) {
		src := sc.env[name]
		if _, ok := settings[name]; !ok && !goRuntimeEnv[name] && !otelEnv[name] {
			errs = append(errs, fmt.Errorf("%s: environment variable %s (from %s) is not a setting of %s", where, name, src.from, sc.binary))
		}
		if credential.MatchString(name) && !src.secret {
			errs = append(errs, fmt.Errorf("%s: credential %s comes from %s, want a secretKeyRef", where, name, src.from))
		}
	}
	for _, arg := range sc.args {
		name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if strings.HasPrefix(arg, "-") && credential.MatchString(config.EnvName(name)) {
			errs = append(errs, fmt.Errorf("%s: credential -%s is an argument (ps shows it); use a secretKeyRef on %s", where, name, config.EnvName(name)))
		}
	}
	return errs
}

// checkPortsAndProbes checks that the container declares exactly the port the service serves
// (-http-addr) and probes the paths it serves there.
func checkPortsAndProbes(where string, sc *serviceContainer, c *corev1.Container) []error {
	var errs []error
	named := false
	for _, p := range c.Ports {
		if p.ContainerPort != sc.httpPort {
			errs = append(errs, fmt.Errorf("%s: container port %s %d: %s serves only %d (-%s)", where, p.Name, p.ContainerPort, sc.binary, sc.httpPort, ops.FlagAddr))
		}
		if p.ContainerPort == sc.httpPort && p.Name != "" {
			named = true
		}
	}
	if !named {
		errs = append(errs, fmt.Errorf("%s: no named container port for %d (-%s)", where, sc.httpPort, ops.FlagAddr))
	}
	probe := func(kind string, p *corev1.Probe, paths ...string) {
		if p == nil {
			errs = append(errs, fmt.Errorf("%s: no %s probe", where, kind))
			return
		}
		if p.HTTPGet == nil {
			errs = append(errs, fmt.Errorf("%s: %s probe is not an HTTP GET of %v", where, kind, paths))
			return
		}
		g := p.HTTPGet
		if !slices.Contains(paths, g.Path) {
			errs = append(errs, fmt.Errorf("%s: %s probe path %q: %s serves %v there", where, kind, g.Path, sc.binary, paths))
		}
		if g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP {
			errs = append(errs, fmt.Errorf("%s: %s probe scheme %s: the ops server speaks HTTP", where, kind, g.Scheme))
		}
		port, ok := podPort(&corev1.PodSpec{Containers: []corev1.Container{*c}}, g.Port, corev1.ProtocolTCP)
		if !ok || port != sc.httpPort {
			errs = append(errs, fmt.Errorf("%s: %s probe port %s: %s serves %v on %d", where, kind, g.Port.String(), sc.binary, paths, sc.httpPort))
		}
	}
	probe("liveness", c.LivenessProbe, ops.PathHealth)
	probe("readiness", c.ReadinessProbe, ops.PathReady)
	if c.StartupProbe != nil {
		probe("startup", c.StartupProbe, ops.PathHealth, ops.PathReady)
	}
	return errs
}

// checkResources checks requests equal to limits (Guaranteed QoS: no overcommit, no CPU
// throttling surprises; ephemeral storage bounded, so that a runaway log cannot fill the node's
// disk) and GOMEMLIMIT set below the memory limit.
func checkResources(where string, c *corev1.Container) []error {
	var errs []error
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
		req, hasReq := c.Resources.Requests[r]
		lim, hasLim := c.Resources.Limits[r]
		switch {
		case !hasReq || !hasLim:
			errs = append(errs, fmt.Errorf("%s: %s request and limit must both be set", where, r))
		case req.Cmp(lim) != 0:
			errs = append(errs, fmt.Errorf("%s: %s request %s differs from limit %s", where, r, req.String(), lim.String()))
		}
	}
	limit, hasLimit := c.Resources.Limits[corev1.ResourceMemory]
	var gomemlimit *corev1.EnvVar
	for i := range c.Env {
		if c.Env[i].Name == "GOMEMLIMIT" {
			gomemlimit = &c.Env[i]
		}
	}
	switch {
	case gomemlimit == nil:
		errs = append(errs, fmt.Errorf("%s: GOMEMLIMIT is not set: the Go heap would grow into the kernel's OOM kill", where))
	case !hasLimit:
	case gomemlimit.ValueFrom != nil:
		ref := gomemlimit.ValueFrom.ResourceFieldRef
		if ref == nil || ref.Resource != "limits.memory" || (ref.ContainerName != "" && ref.ContainerName != c.Name) || (!ref.Divisor.IsZero() && ref.Divisor.Value() != 1) {
			errs = append(errs, fmt.Errorf("%s: GOMEMLIMIT from %+v: want resourceFieldRef limits.memory in bytes, or a value", where, gomemlimit.ValueFrom))
		}
	default:
		v, err := parseGoMemLimit(gomemlimit.Value)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: GOMEMLIMIT %q: %w", where, gomemlimit.Value, err))
		case v > limit.Value() || v < limit.Value()*7/10:
			errs = append(errs, fmt.Errorf("%s: GOMEMLIMIT %s is %d bytes, want 70%% to 100%% of the memory limit %s (%d bytes)", where, gomemlimit.Value, v, limit.String(), limit.Value()))
		}
	}
	return errs
}

// parseGoMemLimit parses GOMEMLIMIT as the Go runtime does: a number of bytes with an optional
// unit B, KiB, MiB, GiB or TiB.
func parseGoMemLimit(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a GOMEMLIMIT (bytes with an optional B, KiB, MiB, GiB or TiB)")
	}
	return n * mult, nil
}

// checkHardening checks what the restricted standard leaves optional but the services need
// not: a writable root filesystem, and running without an explicit non-root user id.
func checkHardening(where string, w workload, c *corev1.Container) []error {
	var errs []error
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		errs = append(errs, fmt.Errorf("%s: readOnlyRootFilesystem must be true", where))
	}
	var uid *int64
	if psc := w.template.Spec.SecurityContext; psc != nil {
		uid = psc.RunAsUser
	}
	if sc != nil && sc.RunAsUser != nil {
		uid = sc.RunAsUser
	}
	if uid == nil || *uid == 0 {
		errs = append(errs, fmt.Errorf("%s: runAsUser must be set to a non-zero id", where))
	}
	return errs
}

// checkShutdown checks that Kubernetes waits longer than the service's own shutdown timeout
// before it kills the process.
func checkShutdown(where string, sc *serviceContainer, w workload) []error {
	f := sc.fs.Lookup("shutdown-timeout")
	if f == nil {
		return nil
	}
	timeout, err := time.ParseDuration(f.Value.String())
	if err != nil {
		return []error{fmt.Errorf("%s: -shutdown-timeout %q: %w", where, f.Value, err)}
	}
	grace := 30 * time.Second
	if g := w.template.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if grace <= timeout {
		return []error{fmt.Errorf("%s: terminationGracePeriodSeconds %s is not longer than -shutdown-timeout %s", where, grace, timeout)}
	}
	return nil
}

// checkPolicy checks the service's replicas, update strategy and topology spread.
func checkPolicy(m *manifests, w workload, sc *serviceContainer) []error {
	p, ok := policies[sc.binary]
	if !ok {
		return []error{fmt.Errorf("%s: no policy for service %s", w, sc.binary)}
	}
	var errs []error
	if w.replicas < p.minReplicas || w.replicas > p.maxReplicas {
		errs = append(errs, fmt.Errorf("%s: %d replicas, want %d to %d", w, w.replicas, p.minReplicas, p.maxReplicas))
	}
	var d *appsv1.Deployment
	for _, x := range m.deployments {
		if x.Name == w.name && w.kind == "Deployment" {
			d = x
		}
	}
	if d == nil {
		return append(errs, fmt.Errorf("%s: services run as Deployments", w))
	}
	if recreate := d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType; recreate != p.recreate {
		errs = append(errs, fmt.Errorf("%s: strategy %q, want Recreate: %v", w, d.Spec.Strategy.Type, p.recreate))
	}
	if w.replicas > 1 {
		spread := false
		for _, tsc := range w.template.Spec.TopologySpreadConstraints {
			if tsc.TopologyKey == corev1.LabelHostname {
				spread = true
			}
		}
		if !spread {
			errs = append(errs, fmt.Errorf("%s: %d replicas without a topology spread over %s", w, w.replicas, corev1.LabelHostname))
		}
	}
	return errs
}

// policyTypes returns the directions a NetworkPolicy governs, with the API's default.
func policyTypes(np *networkingv1.NetworkPolicy) (ingress, egress bool) {
	if len(np.Spec.PolicyTypes) == 0 {
		return true, len(np.Spec.Egress) > 0
	}
	return slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress), slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
}

// checkServiceNetwork checks the namespace denies by default, and that each service may be
// reached only by Prometheus on its ops port and may reach only its policy's egress ports.
func checkServiceNetwork(m *manifests) []error {
	var errs []error
	deny := false
	for _, np := range m.networkPolicies {
		in, out := policyTypes(np)
		if len(np.Spec.PodSelector.MatchLabels) == 0 && len(np.Spec.PodSelector.MatchExpressions) == 0 && in && out && len(np.Spec.Ingress) == 0 && len(np.Spec.Egress) == 0 {
			deny = true
		}
	}
	if !deny {
		errs = append(errs, fmt.Errorf("no default-deny NetworkPolicy (podSelector {}, Ingress and Egress, no rules)"))
	}
	for _, w := range m.workloads() {
		var sc *serviceContainer
		for _, c := range w.template.Spec.Containers {
			if s, err := serviceContainerOf(m, w, &c); err == nil && s != nil {
				sc = s
			}
		}
		if sc == nil {
			continue
		}
		p := policies[sc.binary]
		if key, ok := otlpEgress(sc); ok {
			p.egress = append(slices.Clone(p.egress), key)
		}
		scraped := false
		egress := map[string]bool{}
		for _, np := range m.networkPolicies {
			if ok, _ := selects(&np.Spec.PodSelector, w.template.Labels); !ok {
				continue
			}
			in, out := policyTypes(np)
			if in {
				for _, r := range np.Spec.Ingress {
					if err := checkScrapeRule(&w.template.Spec, sc.httpPort, r); err != nil {
						errs = append(errs, fmt.Errorf("NetworkPolicy %s lets in more than Prometheus to %s: %w", np.Name, w, err))
						continue
					}
					scraped = true
				}
			}
			if out {
				for _, r := range np.Spec.Egress {
					if len(r.Ports) == 0 {
						errs = append(errs, fmt.Errorf("NetworkPolicy %s lets %s reach every port", np.Name, w))
					}
					if anyDestination(r.To) {
						errs = append(errs, fmt.Errorf("NetworkPolicy %s lets %s reach its ports at any address: name where the server runs (a selector, or an ipBlock)", np.Name, w))
					}
					for _, port := range r.Ports {
						key, err := portKey(port)
						if err != nil {
							errs = append(errs, fmt.Errorf("NetworkPolicy %s egress of %s: %w", np.Name, w, err))
							continue
						}
						if !slices.Contains(p.egress, key) {
							errs = append(errs, fmt.Errorf("NetworkPolicy %s lets %s reach %s, which it does not need (%v)", np.Name, w, key, p.egress))
						}
						egress[key] = true
					}
				}
			}
		}
		if !scraped {
			errs = append(errs, fmt.Errorf("%s: no NetworkPolicy lets Prometheus (namespace %s) scrape port %d", w, monitoringNamespace, sc.httpPort))
		}
		for _, key := range p.egress {
			if !egress[key] {
				errs = append(errs, fmt.Errorf("%s: no NetworkPolicy lets it reach %s", w, key))
			}
		}
	}
	return errs
}

// anyDestination reports whether an egress rule's peers admit every address: no peer at all, or
// an ipBlock of a whole address family.
func anyDestination(to []networkingv1.NetworkPolicyPeer) bool {
	if len(to) == 0 {
		return true
	}
	for _, p := range to {
		if p.IPBlock == nil {
			continue
		}
		if _, n, err := net.ParseCIDR(p.IPBlock.CIDR); err == nil {
			if ones, _ := n.Mask.Size(); ones == 0 {
				return true
			}
		}
	}
	return false
}

// checkScrapeRule accepts an ingress rule only from the monitoring namespace to the ops port.
func checkScrapeRule(spec *corev1.PodSpec, httpPort int32, r networkingv1.NetworkPolicyIngressRule) error {
	if len(r.From) == 0 {
		return fmt.Errorf("a rule without from admits every source")
	}
	for _, peer := range r.From {
		ns := peer.NamespaceSelector
		if peer.IPBlock != nil || ns == nil || len(ns.MatchExpressions) > 0 || len(ns.MatchLabels) != 1 || ns.MatchLabels[namespaceNameLabel] != monitoringNamespace {
			return fmt.Errorf("peer %+v is not the namespace %s", peer, monitoringNamespace)
		}
	}
	if len(r.Ports) == 0 {
		return fmt.Errorf("a rule without ports admits every port")
	}
	for _, p := range r.Ports {
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		if p.Port == nil {
			return fmt.Errorf("a port without a number admits every port")
		}
		if port, ok := podPort(spec, *p.Port, proto); !ok || port != httpPort {
			return fmt.Errorf("port %s is not the ops port %d", p.Port.String(), httpPort)
		}
	}
	return nil
}

// portKey writes an egress port as "TCP/4222"; named ports (resolved on the destination) and
// ranges are refused, as the destination is often outside the overlay.
func portKey(p networkingv1.NetworkPolicyPort) (string, error) {
	proto := corev1.ProtocolTCP
	if p.Protocol != nil {
		proto = *p.Protocol
	}
	if p.Port == nil || p.Port.Type != intstr.Int || p.EndPort != nil {
		return "", fmt.Errorf("port %v: want one port number", p.Port)
	}
	return fmt.Sprintf("%s/%d", proto, p.Port.IntVal), nil
}

// otlpEgress is the port a service exporting traces must reach: the OTLP endpoint's (by
// default 4318 for OTLP over HTTP, 4317 for gRPC); none without an endpoint.
func otlpEgress(sc *serviceContainer) (string, bool) {
	endpoint := sc.env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"].value
	if endpoint == "" {
		endpoint = sc.env["OTEL_EXPORTER_OTLP_ENDPOINT"].value
	}
	if endpoint == "" || sc.env["OTEL_SDK_DISABLED"].value == "true" || sc.env["OTEL_TRACES_EXPORTER"].value == "none" {
		return "", false
	}
	protocol := sc.env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"].value
	if protocol == "" {
		protocol = sc.env["OTEL_EXPORTER_OTLP_PROTOCOL"].value
	}
	port := "4318"
	if protocol == "grpc" {
		port = "4317"
	}
	if u, err := url.Parse(endpoint); err == nil && u.Port() != "" {
		port = u.Port()
	}
	return "TCP/" + port, true
}
