package k8s

import (
	"fmt"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// workload is a Deployment or StatefulSet seen through what the checks need: its pods.
type workload struct {
	kind, name string
	replicas   int32
	selector   *metav1.LabelSelector
	template   *corev1.PodTemplateSpec
}

func (w workload) String() string { return w.kind + " " + w.name }

// workloads lists the Deployments and StatefulSets of m.
func (m *manifests) workloads() []workload {
	var ws []workload
	for _, d := range m.deployments {
		ws = append(ws, workload{"Deployment", d.Name, replicas(d.Spec.Replicas), d.Spec.Selector, &d.Spec.Template})
	}
	for _, s := range m.statefulSets {
		ws = append(ws, workload{"StatefulSet", s.Name, replicas(s.Spec.Replicas), s.Spec.Selector, &s.Spec.Template})
	}
	return ws
}

func replicas(r *int32) int32 {
	if r == nil {
		return 1 // the API's default
	}
	return *r
}

// selects reports whether sel selects the labels; a nil selector selects nothing, an empty one
// everything (as for NetworkPolicy podSelector {}).
func selects(sel *metav1.LabelSelector, lbls map[string]string) (bool, error) {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false, err
	}
	return s.Matches(labels.Set(lbls)), nil
}

// selected returns the workloads whose pods sel selects.
func (m *manifests) selected(sel *metav1.LabelSelector) ([]workload, error) {
	var out []workload
	for _, w := range m.workloads() {
		ok, err := selects(sel, w.template.Labels)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, w)
		}
	}
	return out, nil
}

func (m *manifests) configMap(name string) *corev1.ConfigMap {
	for _, cm := range m.configMaps {
		if cm.Name == name {
			return cm
		}
	}
	return nil
}

// check runs every check on m and returns every problem found.
func check(m *manifests) []error {
	var errs []error
	for _, c := range []func(*manifests) []error{
		checkNoSecrets,
		checkPodSecurity,
		checkReferences,
		checkServiceContainers,
		checkWorkloadSelectors,
		checkServices,
		checkDisruptionBudgets,
		checkNetworkPolicySelectors,
		checkServiceNetwork,
		checkPodMonitors,
		checkImages,
	} {
		errs = append(errs, c(m)...)
	}
	return errs
}

// checkNoSecrets refuses any Secret in the output: secret values are never in the repository;
// the README says how to create the Secrets the manifests reference.
func checkNoSecrets(m *manifests) []error {
	var errs []error
	for _, s := range m.secrets {
		errs = append(errs, fmt.Errorf("Secret %s is rendered: secret values must not be in the repository (reference a Secret created as the README says)", s.Name))
	}
	for _, cm := range m.configMaps {
		for k := range cm.Data {
			if credential.MatchString(k) {
				errs = append(errs, fmt.Errorf("ConfigMap %s holds credential %s: credentials come from Secrets only", cm.Name, k))
			}
		}
	}
	return errs
}

// podSecurity evaluates pod templates with the admission plugin's own checks.
var podSecurity = func() policy.Evaluator {
	e, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		panic(err)
	}
	return e
}()

// checkPodSecurity evaluates every pod template against the "restricted" Pod Security Standard,
// at the latest version, as the namespaces' enforce labels ask the API server to.
func checkPodSecurity(m *manifests) []error {
	var errs []error
	lv := psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}
	for _, w := range m.workloads() {
		res := policy.AggregateCheckResults(podSecurity.EvaluatePod(lv, &w.template.ObjectMeta, &w.template.Spec))
		if !res.Allowed {
			errs = append(errs, fmt.Errorf("%s: pod security restricted: %s", w, res.ForbiddenDetail()))
		}
	}
	return errs
}

// checkReferences checks that every ConfigMap a pod reads exists (with the key it reads), and
// collects nothing for Secrets: those are created outside the repository.
func checkReferences(m *manifests) []error {
	var errs []error
	for _, w := range m.workloads() {
		spec := &w.template.Spec
		for _, v := range spec.Volumes {
			if v.ConfigMap != nil && m.configMap(v.ConfigMap.Name) == nil {
				errs = append(errs, fmt.Errorf("%s: volume %s: no ConfigMap %s", w, v.Name, v.ConfigMap.Name))
			}
			if v.Secret != nil && v.Secret.SecretName == "" {
				errs = append(errs, fmt.Errorf("%s: volume %s: Secret without a name", w, v.Name))
			}
		}
		for _, c := range allContainers(spec) {
			for _, ef := range c.EnvFrom {
				if ef.ConfigMapRef != nil && m.configMap(ef.ConfigMapRef.Name) == nil {
					errs = append(errs, fmt.Errorf("%s container %s: envFrom: no ConfigMap %s", w, c.Name, ef.ConfigMapRef.Name))
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom == nil || e.ValueFrom.ConfigMapKeyRef == nil {
					continue
				}
				ref := e.ValueFrom.ConfigMapKeyRef
				cm := m.configMap(ref.Name)
				if cm == nil {
					errs = append(errs, fmt.Errorf("%s container %s: env %s: no ConfigMap %s", w, c.Name, e.Name, ref.Name))
				} else if _, ok := cm.Data[ref.Key]; !ok {
					errs = append(errs, fmt.Errorf("%s container %s: env %s: ConfigMap %s has no key %s", w, c.Name, e.Name, ref.Name, ref.Key))
				}
			}
		}
	}
	return errs
}

func allContainers(spec *corev1.PodSpec) []*corev1.Container {
	var cs []*corev1.Container
	for i := range spec.InitContainers {
		cs = append(cs, &spec.InitContainers[i])
	}
	for i := range spec.Containers {
		cs = append(cs, &spec.Containers[i])
	}
	return cs
}

// secretRef is a Secret key a pod reads.
type secretRef struct{ name, key string }

// secretRefs lists the Secret keys the pods of m read.
func (m *manifests) secretRefs() []secretRef {
	seen := map[secretRef]bool{}
	var refs []secretRef
	for _, w := range m.workloads() {
		for _, c := range allContainers(&w.template.Spec) {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					r := secretRef{e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key}
					if !seen[r] {
						seen[r] = true
						refs = append(refs, r)
					}
				}
			}
		}
	}
	return refs
}

// checkWorkloadSelectors checks that each workload's selector selects its own pods and no other
// workload's, and that its topology spread constraints count its own pods.
func checkWorkloadSelectors(m *manifests) []error {
	var errs []error
	for _, w := range m.workloads() {
		sel, err := m.selected(w.selector)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: selector: %w", w, err))
			continue
		}
		if len(sel) != 1 || sel[0].String() != w.String() {
			errs = append(errs, fmt.Errorf("%s: selector %s selects %v, want its own pods only", w, metav1.FormatLabelSelector(w.selector), sel))
		}
		for _, tsc := range w.template.Spec.TopologySpreadConstraints {
			ok, err := selects(tsc.LabelSelector, w.template.Labels)
			if err != nil || !ok {
				errs = append(errs, fmt.Errorf("%s: topology spread on %s: selector %s does not select its pods", w, tsc.TopologyKey, metav1.FormatLabelSelector(tsc.LabelSelector)))
			}
		}
	}
	return errs
}

// checkServices checks that each Service selects the pods of exactly one workload and that every
// target port is a port of those pods; and that each StatefulSet's serviceName is a Service that
// selects it.
func checkServices(m *manifests) []error {
	var errs []error
	for _, s := range m.services {
		if len(s.Spec.Selector) == 0 {
			errs = append(errs, fmt.Errorf("Service %s: no selector", s.Name))
			continue
		}
		ws, err := m.selected(&metav1.LabelSelector{MatchLabels: s.Spec.Selector})
		if err != nil || len(ws) != 1 {
			errs = append(errs, fmt.Errorf("Service %s: selector %v selects %v, want one workload", s.Name, s.Spec.Selector, ws))
			continue
		}
		for _, p := range s.Spec.Ports {
			target := p.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(p.Port)
			}
			if _, ok := podPort(&ws[0].template.Spec, target, p.Protocol); !ok {
				errs = append(errs, fmt.Errorf("Service %s port %s: target %s is no container port of %s", s.Name, p.Name, target.String(), ws[0]))
			}
		}
	}
	for _, st := range m.statefulSets {
		found := false
		for _, s := range m.services {
			ok, _ := selects(&metav1.LabelSelector{MatchLabels: s.Spec.Selector}, st.Spec.Template.Labels)
			if s.Name == st.Spec.ServiceName && len(s.Spec.Selector) > 0 && ok {
				found = true
			}
		}
		if !found {
			errs = append(errs, fmt.Errorf("StatefulSet %s: serviceName %q is no Service selecting its pods", st.Name, st.Spec.ServiceName))
		}
	}
	return errs
}

// podPort resolves a port (by name or number) on the containers of a pod; protocol "" is TCP.
func podPort(spec *corev1.PodSpec, port intstr.IntOrString, protocol corev1.Protocol) (int32, bool) {
	if protocol == "" {
		protocol = corev1.ProtocolTCP
	}
	for _, c := range spec.Containers {
		for _, cp := range c.Ports {
			proto := cp.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			if proto != protocol {
				continue
			}
			if (port.Type == intstr.String && cp.Name == port.StrVal) || (port.Type == intstr.Int && cp.ContainerPort == port.IntVal) {
				return cp.ContainerPort, true
			}
		}
	}
	return 0, false
}

// checkDisruptionBudgets checks that each PDB selects exactly one workload and that every
// Deployment of a service has one that lets a node drain proceed.
func checkDisruptionBudgets(m *manifests) []error {
	var errs []error
	covered := map[string]bool{}
	for _, p := range m.pdbs {
		ws, err := m.selected(p.Spec.Selector)
		if err != nil || len(ws) != 1 {
			errs = append(errs, fmt.Errorf("PodDisruptionBudget %s: selector %s selects %v, want one workload", p.Name, metav1.FormatLabelSelector(p.Spec.Selector), ws))
			continue
		}
		w := ws[0]
		covered[w.String()] = true
		allowed := w.replicas // disruptions allowed with every pod healthy
		switch {
		case p.Spec.MaxUnavailable != nil:
			v, err := intstr.GetScaledValueFromIntOrPercent(p.Spec.MaxUnavailable, int(w.replicas), true)
			if err != nil {
				errs = append(errs, fmt.Errorf("PodDisruptionBudget %s: maxUnavailable: %w", p.Name, err))
			}
			allowed = min(int32(v), w.replicas)
		case p.Spec.MinAvailable != nil:
			v, err := intstr.GetScaledValueFromIntOrPercent(p.Spec.MinAvailable, int(w.replicas), true)
			if err != nil {
				errs = append(errs, fmt.Errorf("PodDisruptionBudget %s: minAvailable: %w", p.Name, err))
			}
			allowed = w.replicas - int32(v)
		}
		if allowed < 1 {
			errs = append(errs, fmt.Errorf("PodDisruptionBudget %s allows no disruption of %s (%d replicas): node drains would block", p.Name, w, w.replicas))
		}
		if w.replicas > 1 && allowed >= w.replicas {
			errs = append(errs, fmt.Errorf("PodDisruptionBudget %s lets every pod of %s go at once", p.Name, w))
		}
	}
	for _, d := range m.deployments {
		if w := (workload{kind: "Deployment", name: d.Name}); !covered[w.String()] {
			errs = append(errs, fmt.Errorf("%s has no PodDisruptionBudget", w))
		}
	}
	return errs
}

// checkNetworkPolicySelectors checks that every NetworkPolicy selects some pods, that every peer
// chosen by pod labels alone (this namespace) is a workload of the overlay, and that the named
// ports of ingress rules are ports of every pod the policy selects.
func checkNetworkPolicySelectors(m *manifests) []error {
	var errs []error
	for _, np := range m.networkPolicies {
		ws, err := m.selected(&np.Spec.PodSelector)
		if err != nil || len(ws) == 0 {
			errs = append(errs, fmt.Errorf("NetworkPolicy %s: podSelector %s selects no pod", np.Name, metav1.FormatLabelSelector(&np.Spec.PodSelector)))
			continue
		}
		check := func(dir string, ps []networkingv1.NetworkPolicyPeer) {
			for _, p := range ps {
				if p.NamespaceSelector != nil || p.PodSelector == nil {
					continue
				}
				if sel, err := m.selected(p.PodSelector); err != nil || len(sel) == 0 {
					errs = append(errs, fmt.Errorf("NetworkPolicy %s: %s peer %s selects no pod of the namespace", np.Name, dir, metav1.FormatLabelSelector(p.PodSelector)))
				}
			}
		}
		for _, r := range np.Spec.Ingress {
			check("ingress", r.From)
			for _, p := range r.Ports {
				if p.Port == nil || p.Port.Type != intstr.String {
					continue
				}
				proto := corev1.ProtocolTCP
				if p.Protocol != nil {
					proto = *p.Protocol
				}
				for _, w := range ws {
					if _, ok := podPort(&w.template.Spec, *p.Port, proto); !ok {
						errs = append(errs, fmt.Errorf("NetworkPolicy %s: ingress port %q is no port of %s", np.Name, p.Port.StrVal, w))
					}
				}
			}
		}
		for _, r := range np.Spec.Egress {
			check("egress", r.To)
		}
	}
	return errs
}

// checkPodMonitors checks that each PodMonitor selects pods and that its endpoints are ports of
// every pod it selects, and /metrics on the services' ops port.
func checkPodMonitors(m *manifests) []error {
	var errs []error
	for _, pm := range m.podMonitors {
		ws, err := m.selected(&pm.Spec.Selector)
		if err != nil || len(ws) == 0 {
			errs = append(errs, fmt.Errorf("PodMonitor %s: selector %s selects no pod", pm.Name, metav1.FormatLabelSelector(&pm.Spec.Selector)))
			continue
		}
		if len(pm.Spec.PodMetricsEndpoints) == 0 {
			errs = append(errs, fmt.Errorf("PodMonitor %s: no podMetricsEndpoints", pm.Name))
		}
		for _, ep := range pm.Spec.PodMetricsEndpoints {
			for _, w := range ws {
				port, ok := podPort(&w.template.Spec, intstr.FromString(ep.Port), corev1.ProtocolTCP)
				if !ok {
					errs = append(errs, fmt.Errorf("PodMonitor %s: port %q is no port of %s", pm.Name, ep.Port, w))
					continue
				}
				for _, c := range w.template.Spec.Containers {
					sc, err := serviceContainerOf(m, w, &c)
					if err != nil || sc == nil {
						continue
					}
					if port != sc.httpPort {
						errs = append(errs, fmt.Errorf("PodMonitor %s: port %q of %s is %d, the service serves metrics on %d", pm.Name, ep.Port, w, port, sc.httpPort))
					}
					if p := ep.Path; p != sc.metricsPath {
						errs = append(errs, fmt.Errorf("PodMonitor %s: path %q on %s, the service serves metrics on %s", pm.Name, p, w, sc.metricsPath))
					}
				}
			}
		}
	}
	return errs
}

// binaryOf returns the base name of a container's program and whether the container runs the
// registry's image.
func binaryOf(c *corev1.Container) (string, bool) {
	repo := c.Image
	if i := strings.Index(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	if !registryImages[repo] {
		return "", false
	}
	if len(c.Command) == 0 {
		return "", true
	}
	return path.Base(c.Command[0]), true
}
