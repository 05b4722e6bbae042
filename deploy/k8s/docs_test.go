package k8s

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestReadmeCreatesEverySecret checks that README.md says how to create each Secret key the
// overlays (and the prod NATS values) read, since no Secret is in the repository.
func TestReadmeCreatesEverySecret(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	loop := regexp.MustCompile(`for u in ([a-z0-9 -]+); do`).FindStringSubmatch(text)
	var fromLoop []string
	if loop != nil {
		fromLoop = strings.Fields(loop[1])
	}
	refs := []secretRef{
		// prod/nats-values.yaml, container.env (checked against the file by TestProdNATSValues).
		{"nats-cim-users", "command-service"}, {"nats-cim-users", "projector-metrics"}, {"nats-cim-users", "projector-neo4j"},
		{"nats-cim-users", "client"}, {"nats-cim-users", "operator"}, {"nats-cim-users", "sys"},
	}
	for _, overlay := range overlays {
		refs = append(refs, render(t, overlay).secretRefs()...)
	}
	for _, r := range refs {
		if !strings.Contains(text, "secret generic "+r.name+" ") {
			t.Errorf("README.md does not say how to create Secret %s", r.name)
		}
		if !strings.Contains(text, "--from-literal="+r.key+"=") && !slices.Contains(fromLoop, r.key) {
			t.Errorf("README.md does not say how to create key %s of Secret %s", r.key, r.name)
		}
	}
}

// TestDockerfileBuildsEveryBinary checks that the image has every binary the manifests run and
// every service, built static, and runs as a non-root user.
func TestDockerfileBuildsEveryBinary(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(raw)
	built := map[string]bool{}
	for _, m := range regexp.MustCompile(`\./cmd/([a-z0-9-]+)`).FindAllStringSubmatch(df, -1) {
		built[m[1]] = true
		if _, err := os.Stat("../../cmd/" + m[1]); err != nil {
			t.Errorf("Dockerfile builds ./cmd/%s: %v", m[1], err)
		}
	}
	want := []string{"cimctl"}
	for b := range binaries {
		want = append(want, b)
	}
	for _, overlay := range overlays {
		m := render(t, overlay)
		for _, w := range m.workloads() {
			for _, c := range allContainers(&w.template.Spec) {
				if b, ok := binaryOf(c); ok {
					want = append(want, b)
				}
			}
		}
	}
	slices.Sort(want)
	for _, b := range slices.Compact(want) {
		if !built[b] {
			t.Errorf("Dockerfile does not build %s", b)
		}
	}
	if !strings.Contains(df, "CGO_ENABLED=0") {
		t.Error("Dockerfile: binaries are not built with CGO_ENABLED=0 (the final image has no libc)")
	}
	stages := strings.Split(df, "\nFROM ")
	final := stages[len(stages)-1]
	if !regexp.MustCompile(`(?m)^USER 65532(:65532)?$`).MatchString(final) {
		t.Error("Dockerfile: the final stage does not run as USER 65532")
	}
}
