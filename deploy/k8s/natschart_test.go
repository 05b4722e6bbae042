package k8s

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	corev1 "k8s.io/api/core/v1"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"
)

// natsChartVersion is the version of the official NATS Helm chart that prod/nats-values.yaml is
// written for; its merge keys and defaults are that chart's.
const natsChartVersion = "2.14.2"

// prodNATSNamespace is the namespace of the prod NATS cluster, applied before the chart.
const prodNATSNamespace = "prod/nats-namespace.yaml"

// natsChartValues is the part of the chart's values that shapes its pods.
type natsChartValues struct {
	Container struct {
		Image struct {
			Repository string `json:"repository"`
			Tag        string `json:"tag"`
		} `json:"image"`
		Merge json.RawMessage `json:"merge"`
	} `json:"container"`
	Reloader struct {
		Enabled *bool           `json:"enabled"` // the chart's default: true
		Merge   json.RawMessage `json:"merge"`
	} `json:"reloader"`
	PromExporter struct {
		Enabled bool            `json:"enabled"` // the chart's default: false
		Merge   json.RawMessage `json:"merge"`
	} `json:"promExporter"`
	PodTemplate struct {
		Merge json.RawMessage `json:"merge"`
	} `json:"podTemplate"`
}

func readNATSChartValues(t *testing.T) natsChartValues {
	t.Helper()
	raw, err := os.ReadFile(prodNATSValues)
	if err != nil {
		t.Fatal(err)
	}
	var v natsChartValues
	if err := yaml.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// goModNATSServer returns the nats-server version go.mod requires, without its "v".
func goModNATSServer(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*github\.com/nats-io/nats-server/v2 v(\S+)`).FindSubmatch(raw)
	if m == nil {
		t.Fatal("go.mod requires no github.com/nats-io/nats-server/v2")
	}
	return string(m[1])
}

// TestNATSServerVersion keeps the NATS servers of both overlays on the nats-server version of
// go.mod, the one every test of the registry runs against.
func TestNATSServerVersion(t *testing.T) {
	t.Parallel()
	want := goModNATSServer(t)
	if want != server.VERSION {
		t.Fatalf("go.mod requires nats-server %s, the tests link %s", want, server.VERSION)
	}
	v := readNATSChartValues(t)
	if tag := v.Container.Image.Tag; strings.TrimSuffix(tag, "-alpine") != want {
		t.Errorf("%s: container.image.tag %q, want %s-alpine (go.mod's nats-server): unset, the chart deploys its own default", prodNATSValues, tag, want)
	}
	if r := v.Container.Image.Repository; r != "" && r != "nats" {
		t.Errorf("%s: container.image.repository %q, want the official image nats", prodNATSValues, r)
	}
	m := render(t, "dev")
	found := false
	for _, st := range m.statefulSets {
		for _, c := range st.Spec.Template.Spec.Containers {
			if c.Name == "nats" {
				found = true
				if c.Image != "nats:"+want+"-alpine" {
					t.Errorf("dev: StatefulSet %s runs %s, want nats:%s-alpine (go.mod's nats-server)", st.Name, c.Image, want)
				}
			}
		}
	}
	if !found {
		t.Error("dev: no nats container")
	}
}

// decodeMerge decodes a merge key of the chart's values strictly into the Kubernetes type it is
// merged into: a misspelt field would be ignored by the chart and by the API server's default
// (warn) field validation.
func decodeMerge[T any](t *testing.T, key string, raw json.RawMessage) *T {
	t.Helper()
	o := new(T)
	if len(raw) == 0 {
		return o
	}
	if err := decodeInto(func(_ *manifests, v *T) { *o = *v })(nil, raw); err != nil {
		t.Errorf("%s: %s: %v", prodNATSValues, key, err)
	}
	return o
}

// TestProdNATSRestricted builds the pod the chart renders from prod/nats-values.yaml, as far as
// security goes (the chart's pod template merged with podTemplate.merge, each container it runs
// merged with its merge key: nats, reloader unless disabled, prom-exporter if enabled), and
// evaluates it against the restricted Pod Security Standard, which the nats namespace enforces.
func TestProdNATSRestricted(t *testing.T) {
	t.Parallel()
	v := readNATSChartValues(t)
	tmpl := decodeMerge[corev1.PodTemplateSpec](t, "podTemplate.merge", v.PodTemplate.Merge)
	if len(tmpl.Spec.Containers) > 0 || len(tmpl.Spec.Volumes) > 0 {
		t.Errorf("%s: podTemplate.merge sets containers or volumes: the chart's merge replaces lists whole, dropping its own", prodNATSValues)
	}
	pod := tmpl.DeepCopy()
	// What the chart's pod template (files/stateful-set/pod-template.yaml) sets itself.
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}},
		{Name: "pid", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	containers := map[string]json.RawMessage{"nats": v.Container.Merge}
	if v.Reloader.Enabled == nil || *v.Reloader.Enabled {
		containers["reloader"] = v.Reloader.Merge
		pod.Spec.ShareProcessNamespace = new(true)
	}
	if v.PromExporter.Enabled {
		containers["prom-exporter"] = v.PromExporter.Merge
	}
	for name, merge := range containers {
		c := decodeMerge[corev1.Container](t, name+".merge", merge)
		c.Name = name
		pod.Spec.Containers = append(pod.Spec.Containers, *c)
	}
	lv := psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}
	res := policy.AggregateCheckResults(podSecurity.EvaluatePod(lv, &pod.ObjectMeta, &pod.Spec))
	if !res.Allowed {
		t.Errorf("%s: the chart's NATS pod fails the restricted Pod Security Standard: %s", prodNATSValues, res.ForbiddenDetail())
	}
	for _, c := range pod.Spec.Containers {
		if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: container %s: readOnlyRootFilesystem must be true", prodNATSValues, c.Name)
		}
	}
	if sc := pod.Spec.SecurityContext; sc == nil || sc.FSGroup == nil {
		t.Errorf("%s: podTemplate.merge.spec.securityContext sets no fsGroup: a non-root server cannot write its JetStream PVC", prodNATSValues)
	}
}

// TestProdNATSNamespace checks that the nats namespace enforces the restricted Pod Security
// Standard and that the documented commands create it from that file and install the pinned
// chart.
func TestProdNATSNamespace(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(prodNATSNamespace)
	if err != nil {
		t.Fatal(err)
	}
	m, err := decode("prod", [][]byte{raw})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.namespaces) != 1 || m.namespaces[0].Name != "nats" {
		t.Fatalf("%s: want Namespace nats, got %d namespaces", prodNATSNamespace, len(m.namespaces))
	}
	if errs := checkNamespaceLabels(m.namespaces[0]); len(errs) > 0 {
		t.Errorf("%s: %v", prodNATSNamespace, errs)
	}
	helm := "helm upgrade --install nats nats/nats --version " + natsChartVersion + " "
	for file, apply := range map[string]string{"README.md": "kubectl apply -f deploy/k8s/" + prodNATSNamespace, prodNATSValues: "kubectl apply -f nats-namespace.yaml"} {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		text := string(raw)
		if !strings.Contains(text, helm) {
			t.Errorf("%s: no %q: install the chart version the values are written for", file, helm)
		}
		if n := strings.Count(text, "nats/nats "); n != strings.Count(text, helm) {
			t.Errorf("%s: %d helm commands install nats/nats, %d of them pin --version %s", file, n, strings.Count(text, helm), natsChartVersion)
		}
		if !strings.Contains(text, apply) || strings.Contains(text, "create namespace nats") {
			t.Errorf("%s: the nats namespace must be created with %q (its Pod Security labels), not kubectl create namespace", file, apply)
		}
	}
	major := strings.SplitN(natsChartVersion, ".", 2)[0]
	raw, err = os.ReadFile(prodNATSValues)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`chart (\d+)\.x`).FindAllStringSubmatch(string(raw), -1) {
		if m[1] != major {
			t.Errorf("%s says chart %s.x, the values are for chart %s", prodNATSValues, m[1], natsChartVersion)
		}
	}
}

// checkNamespaceLabels checks that a namespace enforces the restricted Pod Security Standard.
func checkNamespaceLabels(ns *corev1.Namespace) []string {
	var errs []string
	if l := ns.Labels[psaapi.EnforceLevelLabel]; l != string(psaapi.LevelRestricted) {
		errs = append(errs, "Namespace "+ns.Name+": "+psaapi.EnforceLevelLabel+" is "+l+", want restricted")
	}
	if l := ns.Labels[psaapi.EnforceVersionLabel]; l != "latest" {
		errs = append(errs, "Namespace "+ns.Name+": "+psaapi.EnforceVersionLabel+" is "+l+", want latest")
	}
	return errs
}
