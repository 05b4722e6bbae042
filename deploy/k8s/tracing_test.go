package k8s

import (
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"testing"
)

// TestTracingComponent renders each overlay with the tracing component added, as the README
// says to: every check still passes, every service's common ConfigMap carries the OTLP endpoint,
// and a NetworkPolicy lets every service's pods reach the collector on the endpoint's port.
func TestTracingComponent(t *testing.T) {
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			mem := memCopy(t)
			err := fs.WalkDir(os.DirFS("."), "tracing", func(p string, d fs.DirEntry, err error) error {
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
			kust := "/k/" + overlay + "/kustomization.yaml"
			data, err := mem.ReadFile(kust)
			if err != nil {
				t.Fatal(err)
			}
			if err := mem.WriteFile(kust, append(data, []byte("\ncomponents:\n  - ../tracing\n")...)); err != nil {
				t.Fatal(err)
			}
			m, err := build(mem, "/k/"+overlay, overlay)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range check(m) {
				t.Error(e)
			}
			var endpoint bool
			for _, cm := range m.configMaps {
				if strings.HasPrefix(cm.Name, "cim-common") {
					endpoint = cm.Data["OTEL_EXPORTER_OTLP_ENDPOINT"] != "" && cm.Data["NATS_URL"] != ""
				}
			}
			if !endpoint {
				t.Error("cim-common has no OTEL_EXPORTER_OTLP_ENDPOINT beside its other settings")
			}
			var egress bool
			for _, np := range m.networkPolicies {
				if np.Spec.PodSelector.MatchLabels["app.kubernetes.io/part-of"] != "cim-registry" {
					continue
				}
				for _, rule := range np.Spec.Egress {
					var ports []int32
					for _, p := range rule.Ports {
						ports = append(ports, p.Port.IntVal)
					}
					egress = egress || (len(rule.To) > 0 && slices.Contains(ports, 4318))
				}
			}
			if !egress {
				t.Error("no NetworkPolicy lets the services reach the collector on 4318")
			}
		})
	}
}
