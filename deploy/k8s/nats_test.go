package k8s

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cim-infra/registry/internal/config"
	"github.com/cim-infra/registry/internal/natsconn"
	"github.com/nats-io/nats-server/v2/server"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The NATS configurations: dev/nats.conf for the dev overlay's single node, prod/nats-values.yaml
// for the official Helm chart. Both are read by nats-server's own configuration code.
const (
	devNATSConf    = "dev/nats.conf"
	prodNATSValues = "prod/nats-values.yaml"
	natsAccount    = "CIM"
)

// natsUser is a NATS user as a server loads it, and where its password comes from.
type natsUser struct {
	account     string
	permissions *server.Permissions
	secret      secretRef // the Secret key behind its password
}

// loadNATSConfig processes a nats-server configuration file whose passwords are environment
// variables: each variable in env is set to a value naming it, so that every user's password
// tells which variable, hence which Secret key, it came from.
func loadNATSConfig(t *testing.T, file string, env map[string]secretRef) map[string]natsUser {
	t.Helper()
	for name := range env {
		t.Setenv(name, "from-"+name)
	}
	opts, err := server.ProcessConfigFile(file)
	if err != nil {
		t.Fatalf("nats-server refuses %s: %v", file, err)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats-server refuses the options of %s: %v", file, err)
	}
	s.Shutdown()
	users := map[string]natsUser{}
	for _, u := range opts.Users {
		ref, ok := env[strings.TrimPrefix(u.Password, "from-")]
		if !strings.HasPrefix(u.Password, "from-") || !ok {
			t.Errorf("%s: user %s: password is not one of the variables %v set from Secrets", file, u.Username, slices.Sorted(maps.Keys(env)))
		}
		account := ""
		if u.Account != nil {
			account = u.Account.Name
		}
		users[u.Username] = natsUser{account: account, permissions: u.Permissions, secret: ref}
	}
	return users
}

// TestDevNATSConfig loads dev/nats.conf as the dev StatefulSet runs it and checks JetStream's
// settings and that each service's NATS user and password are those the server knows.
func TestDevNATSConfig(t *testing.T) {
	m := render(t, "dev")
	var nats *corev1.Container
	for _, st := range m.statefulSets {
		for i, c := range st.Spec.Template.Spec.Containers {
			if c.Name == "nats" {
				nats = &st.Spec.Template.Spec.Containers[i]
			}
		}
	}
	if nats == nil {
		t.Fatal("dev: no nats container")
	}
	env := map[string]secretRef{}
	for _, e := range nats.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			env[e.Name] = secretRef{e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key}
		}
	}
	users := loadNATSConfig(t, devNATSConf, env)
	opts, err := server.ProcessConfigFile(devNATSConf)
	if err != nil {
		t.Fatal(err)
	}
	if !opts.JetStream || !opts.SyncAlways || opts.StoreDir != "/data" {
		t.Errorf("%s: jetstream %v, sync always %v, store %q; want JetStream with sync_interval always in /data (the PVC)", devNATSConf, opts.JetStream, opts.SyncAlways, opts.StoreDir)
	}
	checkServiceUsers(t, m, users, func(r secretRef) secretRef { return r })
}

// checkServiceUsers checks that each service container of m logs in as a user of the registry's
// account, with the password of that user: the Secret key of its NATS_PASSWORD, mapped by
// sameSecret to the server's side, is the key behind the user's password.
func checkServiceUsers(t *testing.T, m *manifests, users map[string]natsUser, sameSecret func(secretRef) secretRef) {
	t.Helper()
	for _, w := range m.workloads() {
		for _, c := range w.template.Spec.Containers {
			sc, err := serviceContainerOf(m, w, &c)
			if err != nil || sc == nil {
				continue
			}
			name := sc.fs.Lookup(natsconn.FlagUser).Value.String()
			u, ok := users[name]
			switch {
			case !ok:
				t.Errorf("%s: %s logs in to NATS as %q, a user the NATS config of %s does not have", w, sc.binary, name, m.overlay)
				continue
			case u.account != natsAccount:
				t.Errorf("%s: NATS user %s is in account %q, want %s", w, name, u.account, natsAccount)
			case u.permissions == nil:
				t.Errorf("%s: NATS user %s has no permissions: it may do anything", w, name)
			}
			if prefix := sc.fs.Lookup(natsconn.FlagInboxPrefix).Value.String(); !ownsInboxes(u.permissions, prefix) {
				t.Errorf("%s: %s makes its reply subjects under %q (%s), which NATS user %s may not subscribe to: every request it makes would go unanswered",
					w, sc.binary, prefix, config.EnvName(natsconn.FlagInboxPrefix), name)
			}
			pw, ok := sc.env["NATS_PASSWORD"]
			if !ok || !pw.secret {
				t.Errorf("%s: NATS_PASSWORD does not come from a Secret", w)
				continue
			}
			if ref := sameSecret(pw.ref); ref != u.secret {
				t.Errorf("%s: NATS_PASSWORD is Secret key %v, the server's password of %s is %v", w, ref, name, u.secret)
			}
		}
	}
}

// ownsInboxes reports whether p lets its user subscribe to every reply subject under the inbox
// prefix (nats.go's "_INBOX" when prefix is empty).
func ownsInboxes(p *server.Permissions, prefix string) bool {
	if prefix == "" {
		prefix = "_INBOX"
	}
	if p == nil || p.Subscribe == nil {
		return true // unrestricted subscriptions
	}
	for _, deny := range p.Subscribe.Deny {
		if server.SubjectsCollide(prefix+".>", deny) {
			return false
		}
	}
	if p.Subscribe.Allow == nil {
		return true
	}
	for _, allow := range p.Subscribe.Allow {
		if server.SubjectMatchesFilter(prefix+".>", allow) {
			return true
		}
	}
	return false
}

// helmVar matches the chart's way of writing a bare NATS variable: "<< $NAME >>".
var helmVar = regexp.MustCompile(`"<< \$([A-Z0-9_]+) >>"`)

// TestProdNATSValues checks the Helm values: a 3-node JetStream cluster on file storage that
// fsyncs every write; and it loads the accounts as nats-server would (the chart writes the
// config.merge tree as NATS configuration, "<< $X >>" as a bare variable), with every password
// from a Secret, and the same users and permissions as dev/nats.conf.
func TestProdNATSValues(t *testing.T) {
	raw, err := os.ReadFile(prodNATSValues)
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Config struct {
			Cluster struct {
				Enabled  bool `json:"enabled"`
				Replicas int  `json:"replicas"`
			} `json:"cluster"`
			JetStream struct {
				Enabled   bool `json:"enabled"`
				FileStore struct {
					Enabled *bool `json:"enabled"`
					PVC     struct {
						Enabled *bool  `json:"enabled"`
						Size    string `json:"size"`
					} `json:"pvc"`
				} `json:"fileStore"`
				MemoryStore struct {
					Enabled bool `json:"enabled"`
				} `json:"memoryStore"`
				Merge map[string]any `json:"merge"`
			} `json:"jetstream"`
			Merge map[string]any `json:"merge"`
		} `json:"config"`
		Container struct {
			Env map[string]json.RawMessage `json:"env"`
		} `json:"container"`
	}
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	c := values.Config
	if !c.Cluster.Enabled || c.Cluster.Replicas != 3 {
		t.Errorf("cluster enabled %v with %d replicas, want 3", c.Cluster.Enabled, c.Cluster.Replicas)
	}
	js := c.JetStream
	if !js.Enabled || (js.FileStore.Enabled != nil && !*js.FileStore.Enabled) || (js.FileStore.PVC.Enabled != nil && !*js.FileStore.PVC.Enabled) || js.FileStore.PVC.Size == "" || js.MemoryStore.Enabled {
		t.Errorf("jetstream %+v: want file storage on a PVC, no memory storage", js)
	}
	if js.Merge["sync_interval"] != "always" {
		t.Errorf("jetstream sync_interval %v, want always", js.Merge["sync_interval"])
	}

	env := map[string]secretRef{}
	for name, v := range values.Container.Env {
		var e struct {
			ValueFrom *corev1.EnvVarSource `json:"valueFrom"`
		}
		if json.Unmarshal(v, &e) == nil && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			env[name] = secretRef{e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key}
		}
	}
	tree := map[string]any{}
	maps.Copy(tree, c.Merge)
	tree["jetstream"] = map[string]any{"store_dir": t.TempDir(), "sync_interval": js.Merge["sync_interval"]}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "<< $X >>" as the chart sees it
	enc.SetIndent("", "  ")
	if err := enc.Encode(tree); err != nil {
		t.Fatal(err)
	}
	conf := buf.Bytes()
	for _, v := range helmVar.FindAllSubmatch(conf, -1) {
		if _, ok := env[string(v[1])]; !ok {
			t.Errorf("config uses $%s, which container.env does not set from a Secret", v[1])
		}
	}
	file := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(file, helmVar.ReplaceAll(conf, []byte("$$$1")), 0o600); err != nil {
		t.Fatal(err)
	}
	prod := loadNATSConfig(t, file, env)
	opts, err := server.ProcessConfigFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !opts.SyncAlways {
		t.Errorf("the server does not read sync_interval %v as always", js.Merge["sync_interval"])
	}

	devEnv := map[string]secretRef{}
	for name, ref := range env {
		devEnv[name] = secretRef{"cim-nats", ref.key}
	}
	dev := loadNATSConfig(t, devNATSConf, devEnv)
	if !reflect.DeepEqual(userSummary(dev), userSummary(prod)) {
		t.Errorf("users and permissions differ between %s and %s:\ndev:  %v\nprod: %v", devNATSConf, prodNATSValues, userSummary(dev), userSummary(prod))
	}

	// In prod the server's Secret (namespace nats) and the services' (namespace cim) are two
	// Secrets with the same keys, created from the same passwords (README).
	m := render(t, "prod")
	checkServiceUsers(t, m, prod, func(r secretRef) secretRef {
		if r.name == "cim-nats" {
			r.name = "nats-cim-users"
		}
		return r
	})
}

// userSummary writes users for comparison: account, permissions and password's Secret key.
func userSummary(users map[string]natsUser) map[string]string {
	out := map[string]string{}
	for name, u := range users {
		p, _ := json.Marshal(u.permissions)
		out[name] = fmt.Sprintf("account=%s key=%s permissions=%s", u.account, u.secret.key, p)
	}
	return out
}
