// Package k8s holds the registry's Kubernetes manifests (a kustomize base and the overlays dev
// and prod) and the tests that check them offline: they render every overlay with kustomize's Go
// API, decode every object strictly into the Kubernetes API types, and check the result against
// the Pod Security Standard "restricted" and against the services' own flag sets.
package k8s

import (
	"errors"
	"fmt"
	"sort"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// overlays are the directories a person applies with kubectl apply -k.
var overlays = []string{"dev", "prod"}

// manifests is one rendered overlay, every object decoded into its API type.
type manifests struct {
	overlay         string
	namespaces      []*corev1.Namespace
	configMaps      []*corev1.ConfigMap
	secrets         []*corev1.Secret
	services        []*corev1.Service
	deployments     []*appsv1.Deployment
	statefulSets    []*appsv1.StatefulSet
	pdbs            []*policyv1.PodDisruptionBudget
	networkPolicies []*networkingv1.NetworkPolicy
	podMonitors     []*podMonitor
	prometheusRules []*prometheusRule
	images          []types.Image // the overlay's own images: entries
}

// kindKey is apiVersion and kind, as written in a manifest.
type kindKey struct{ apiVersion, kind string }

// decoders maps every kind the overlays may contain to a function decoding one object strictly
// (unknown and duplicate fields are errors) and filing it. A kind missing here is an error: a
// new kind needs a decision on how to check it.
var decoders = map[kindKey]func(m *manifests, doc []byte) error{
	{"v1", "Namespace"}:                        decodeInto(func(m *manifests, o *corev1.Namespace) { m.namespaces = append(m.namespaces, o) }),
	{"v1", "ConfigMap"}:                        decodeInto(func(m *manifests, o *corev1.ConfigMap) { m.configMaps = append(m.configMaps, o) }),
	{"v1", "Secret"}:                           decodeInto(func(m *manifests, o *corev1.Secret) { m.secrets = append(m.secrets, o) }),
	{"v1", "Service"}:                          decodeInto(func(m *manifests, o *corev1.Service) { m.services = append(m.services, o) }),
	{"apps/v1", "Deployment"}:                  decodeInto(func(m *manifests, o *appsv1.Deployment) { m.deployments = append(m.deployments, o) }),
	{"apps/v1", "StatefulSet"}:                 decodeInto(func(m *manifests, o *appsv1.StatefulSet) { m.statefulSets = append(m.statefulSets, o) }),
	{"policy/v1", "PodDisruptionBudget"}:       decodeInto(func(m *manifests, o *policyv1.PodDisruptionBudget) { m.pdbs = append(m.pdbs, o) }),
	{"networking.k8s.io/v1", "NetworkPolicy"}:  decodeInto(func(m *manifests, o *networkingv1.NetworkPolicy) { m.networkPolicies = append(m.networkPolicies, o) }),
	{"monitoring.coreos.com/v1", "PodMonitor"}: decodeInto(func(m *manifests, o *podMonitor) { m.podMonitors = append(m.podMonitors, o) }),
	{"monitoring.coreos.com/v1", "PrometheusRule"}: decodeInto(func(m *manifests, o *prometheusRule) {
		m.prometheusRules = append(m.prometheusRules, o)
	}),
}

// decodeInto returns a decoder for type T, as strict as the API server's field validation: the
// YAML becomes JSON (duplicate keys refused), decoded by sigs.k8s.io/json, the decoder of
// apimachinery, case-sensitively and with unknown and duplicate fields as errors. (encoding/json,
// which sigs.k8s.io/yaml's UnmarshalStrict uses, matches field names without regard to case and
// so accepts readOnlyRootFileSystem.)
func decodeInto[T any](file func(*manifests, *T)) func(*manifests, []byte) error {
	return func(m *manifests, doc []byte) error {
		data, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			return err
		}
		o := new(T)
		strict, err := kjson.UnmarshalStrict(data, o, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
		if err != nil {
			return err
		}
		if len(strict) > 0 {
			return errors.Join(strict...)
		}
		file(m, o)
		return nil
	}
}

// renderFS renders the kustomization in dir of fsys, as kubectl apply -k would, and returns
// every object as YAML, in kustomize's output order.
func renderFS(fsys filesys.FileSystem, dir string) ([][]byte, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var docs [][]byte
	for _, r := range resMap.Resources() {
		doc, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s: %w", dir, r.CurId(), err)
		}
		docs = append(docs, doc)
	}
	return docs, nil
}

// decode files every document into m, strictly.
func decode(overlay string, docs [][]byte) (*manifests, error) {
	m := &manifests{overlay: overlay}
	for _, doc := range docs {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			return nil, fmt.Errorf("%s: %w", overlay, err)
		}
		dec, ok := decoders[kindKey{head.APIVersion, head.Kind}]
		if !ok {
			return nil, fmt.Errorf("%s: %s %s %q: no decoder for this kind (add one to decoders)", overlay, head.APIVersion, head.Kind, head.Metadata.Name)
		}
		if err := dec(m, doc); err != nil {
			return nil, fmt.Errorf("%s: %s %q: %w", overlay, head.Kind, head.Metadata.Name, err)
		}
	}
	return m, nil
}

// build renders the kustomization in dir of fsys and decodes it as overlay.
func build(fsys filesys.FileSystem, dir, overlay string) (*manifests, error) {
	docs, err := renderFS(fsys, dir)
	if err != nil {
		return nil, err
	}
	m, err := decode(overlay, docs)
	if err != nil {
		return nil, err
	}
	if m.images, err = overlayImages(fsys, dir); err != nil {
		return nil, err
	}
	return m, nil
}

// render renders and decodes an overlay of this directory.
func render(t *testing.T, overlay string) *manifests {
	t.Helper()
	m, err := build(filesys.MakeFsOnDisk(), overlay, overlay)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRenderedKindsAreKnown(t *testing.T) {
	t.Parallel()
	for _, overlay := range overlays {
		m := render(t, overlay)
		kinds := map[string]int{
			"Deployment": len(m.deployments), "PodDisruptionBudget": len(m.pdbs),
			"NetworkPolicy": len(m.networkPolicies), "PodMonitor": len(m.podMonitors), "PrometheusRule": len(m.prometheusRules),
			"ConfigMap": len(m.configMaps), "Namespace": len(m.namespaces),
		}
		var missing []string
		for kind, n := range kinds {
			if n == 0 {
				missing = append(missing, kind)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("%s renders no %v", overlay, missing)
		}
	}
}
