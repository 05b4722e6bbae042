package k8s

import (
	"testing"
)

// TestOverlays renders each overlay and runs every check on it.
func TestOverlays(t *testing.T) {
	t.Parallel()
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			t.Parallel()
			m := render(t, overlay)
			for _, err := range check(m) {
				t.Error(err)
			}
			if len(m.deployments) < len(binaries) {
				t.Errorf("%s renders %d Deployments, want one per service (%d)", overlay, len(m.deployments), len(binaries))
			}
		})
	}
}
