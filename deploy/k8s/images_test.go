package k8s

import (
	"fmt"
	"path"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// registryImage is the name the manifests give the registry's image; each overlay's images:
// entry for it says which image its pods run.
const registryImage = "cim-registry"

// overlayImages reads the images: entries of the kustomization in dir.
func overlayImages(fsys filesys.FileSystem, dir string) ([]types.Image, error) {
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		file := path.Join(dir, name)
		if !fsys.Exists(file) {
			continue
		}
		data, err := fsys.ReadFile(file)
		if err != nil {
			return nil, err
		}
		var k types.Kustomization
		if err := yaml.Unmarshal(data, &k); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		return k.Images, nil
	}
	return nil, fmt.Errorf("%s: no kustomization file", dir)
}

// imageReference is the image an images: entry makes of its name, as kustomize writes it.
func imageReference(img types.Image) string {
	name := img.Name
	if img.NewName != "" {
		name = img.NewName
	}
	switch {
	case img.Digest != "":
		return name + "@" + img.Digest
	case img.NewTag != "":
		return name + ":" + img.NewTag
	}
	return name
}

// checkImages checks that the overlay sets the registry's image to a pinned tag or digest (never
// latest) and that every container running the registry's image runs exactly that reference
// with an explicit pull policy: an entry that matches nothing (because something renamed the
// image first) leaves the pods on another image without any error from kustomize.
func checkImages(m *manifests) []error {
	var want string
	var errs []error
	for _, img := range m.images {
		if img.Name != registryImage {
			continue
		}
		want = imageReference(img)
		if img.Digest == "" && (img.NewTag == "" || img.NewTag == "latest") {
			errs = append(errs, fmt.Errorf("%s: images: sets %s to %s: pin a tag other than latest, or a digest", m.overlay, registryImage, want))
		}
	}
	if want == "" {
		return append(errs, fmt.Errorf("%s: no images: entry for %s in the overlay: its pods would run whatever the bare name resolves to", m.overlay, registryImage))
	}
	for _, w := range m.workloads() {
		for _, c := range allContainers(&w.template.Spec) {
			if _, ours := binaryOf(c); !ours && c.Image != registryImage {
				continue
			}
			if c.Image != want {
				errs = append(errs, fmt.Errorf("%s container %s: image %s, the overlay's images: entry sets %s to %s", w, c.Name, c.Image, registryImage, want))
			}
			if c.ImagePullPolicy == "" {
				errs = append(errs, fmt.Errorf("%s container %s: no imagePullPolicy: the default depends on the tag", w, c.Name))
			}
		}
	}
	return errs
}

// TestOverlayImages pins the image and pull policy each overlay runs: dev the image built and
// loaded into the laptop cluster (kind load, k3d image import: it is in no registry, so it must
// not be pulled), prod the released image, pulled on every start (which checks the pod's right
// to it).
func TestOverlayImages(t *testing.T) {
	t.Parallel()
	want := map[string]struct {
		image  string
		policy corev1.PullPolicy
	}{
		"dev":  {"cim-registry:dev", corev1.PullIfNotPresent},
		"prod": {"ghcr.io/cim-infra/registry:v0.1.0", corev1.PullAlways},
	}
	for _, overlay := range overlays {
		m := render(t, overlay)
		n := 0
		for _, w := range m.workloads() {
			for _, c := range allContainers(&w.template.Spec) {
				if _, ours := binaryOf(c); !ours {
					continue
				}
				n++
				if c.Image != want[overlay].image || c.ImagePullPolicy != want[overlay].policy {
					t.Errorf("%s: %s container %s runs %s (pull policy %s), want %s (%s)", overlay, w, c.Name, c.Image, c.ImagePullPolicy, want[overlay].image, want[overlay].policy)
				}
			}
		}
		if n < len(binaries) {
			t.Errorf("%s: %d containers run the registry's image, want at least %d", overlay, n, len(binaries))
		}
	}
}

// TestSetImageApplies does what the README tells an operator: kustomize edit set image on the
// prod overlay, i.e. an images: entry for cim-registry with another tag; the rendered pods must
// run it.
func TestSetImageApplies(t *testing.T) {
	t.Parallel()
	mem := memCopy(t)
	file := "/k/prod/kustomization.yaml"
	data, err := mem.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	const old, edited = "    newTag: v0.1.0", "    newTag: v9.8.7"
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	if err := mem.WriteFile(file, []byte(strings.Replace(string(data), old, edited, 1))); err != nil {
		t.Fatal(err)
	}
	m, err := build(mem, "/k/prod", "prod")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range m.deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Image != "ghcr.io/cim-infra/registry:v9.8.7" {
				t.Errorf("Deployment %s container %s runs %s after setting the tag to v9.8.7", d.Name, c.Name, c.Image)
			}
		}
	}
}
