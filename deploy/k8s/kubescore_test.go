package k8s

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kubeScore is the kube-score the deploy tests run. As a library it does not build against
// this module's k8s.io/api (it imports API groups that have since been removed), so it runs as
// its own module with go run, which builds it once into the build cache.
const kubeScore = "github.com/zegl/kube-score/cmd/kube-score@v1.20.0"

// kubeScoreException is a CRITICAL finding of kube-score that an overlay keeps, and why.
type kubeScoreException struct {
	overlay, object, check string // object is Kind/name
	reason                 string
}

var kubeScoreExceptions = []kubeScoreException{
	// The registry's image in dev is built and loaded into the node (kind load, k3d image import)
	// and is in no registry: pulling it would fail. Prod pulls Always.
	{"dev", "Deployment/command-service", "container-image-pull-policy", "image loaded into the node, in no registry"},
	{"dev", "Deployment/projector-metrics", "container-image-pull-policy", "image loaded into the node, in no registry"},
	{"dev", "Deployment/projector-neo4j", "container-image-pull-policy", "image loaded into the node, in no registry"},
	{"dev", "Deployment/query-service", "container-image-pull-policy", "image loaded into the node, in no registry"},
	// Public images with no pull secret for Always to check; IfNotPresent lets a laptop cluster
	// restart offline.
	{"dev", "StatefulSet/nats", "container-image-pull-policy", "public image, no pull secret; laptop cluster may be offline"},
	{"dev", "StatefulSet/neo4j", "container-image-pull-policy", "public image, no pull secret; laptop cluster may be offline"},
	// The official Neo4j image (dev only; prod's Neo4j is outside these manifests) runs as its
	// built-in user 7474, which owns its files, and writes its configuration and run state under
	// /var/lib/neo4j at start.
	{"dev", "StatefulSet/neo4j", "container-security-context-user-group-id", "the image's own user 7474 owns its files"},
	{"dev", "StatefulSet/neo4j", "container-security-context-readonlyrootfilesystem", "the image writes its configuration under /var/lib/neo4j at start"},
}

// kubeScoreObject is one object and its checks in kube-score's JSON output (format v2).
type kubeScoreObject struct {
	TypeMeta struct {
		Kind string `json:"kind"`
	} `json:"type_meta"`
	ObjectMeta struct {
		Name string `json:"name"`
	} `json:"object_meta"`
	Checks []struct {
		Check struct {
			ID string `json:"id"`
		} `json:"check"`
		Grade    int  `json:"grade"`
		Skipped  bool `json:"skipped"`
		Comments []struct {
			Path    string `json:"path"`
			Summary string `json:"summary"`
		} `json:"comments"`
	} `json:"checks"`
}

// kubeScoreCritical is kube-score's grade for a critical finding (scorecard.GradeCritical).
const kubeScoreCritical = 1

// runKubeScore renders an overlay and scores it with kube-score's default checks, returning its
// critical findings as "Kind/name check" with what kube-score said.
func runKubeScore(t *testing.T, overlay string) map[string]string {
	t.Helper()
	docs, err := renderFS(filesys.MakeFsOnDisk(), overlay)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", kubeScore, "score", "--output-format", "json", "-")
	cmd.Stdin = bytes.NewReader(bytes.Join(docs, []byte("---\n")))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var objs []kubeScoreObject
	if jerr := json.Unmarshal(stdout.Bytes(), &objs); jerr != nil || len(objs) == 0 {
		// kube-score exits 1 when it finds anything critical, with its report on stdout; no
		// report means it did not run (no network for its first download, for one).
		msg := fmt.Sprintf("go run %s: %v (%v)\n%s", kubeScore, err, jerr, stderr.String())
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatal(msg)
		}
		t.Skip("kube-score did not run (outside CI this test skips): " + msg)
	}
	critical := map[string]string{}
	for _, o := range objs {
		for _, c := range o.Checks {
			if c.Skipped || c.Grade > kubeScoreCritical {
				continue
			}
			var said []string
			for _, cm := range c.Comments {
				said = append(said, strings.TrimSpace(cm.Path+" "+cm.Summary))
			}
			critical[o.TypeMeta.Kind+"/"+o.ObjectMeta.Name+" "+c.Check.ID] = strings.Join(said, "; ")
		}
	}
	return critical
}

// TestKubeScore scores both overlays with kube-score: no critical finding beyond the listed
// exceptions, and no exception that no longer applies.
func TestKubeScore(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: kube-score is built and run with go run")
	}
	for _, overlay := range overlays {
		critical := runKubeScore(t, overlay)
		excepted := map[string]bool{}
		for _, e := range kubeScoreExceptions {
			if e.overlay != overlay {
				continue
			}
			key := e.object + " " + e.check
			excepted[key] = true
			if _, ok := critical[key]; !ok {
				t.Errorf("%s: exception %s (%s) no longer applies: remove it", overlay, key, e.reason)
			}
		}
		for key, said := range critical {
			if !excepted[key] {
				t.Errorf("%s: kube-score CRITICAL %s: %s", overlay, key, said)
			}
		}
	}
}
