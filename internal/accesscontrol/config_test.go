package accesscontrol

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"sigs.k8s.io/yaml"
)

// TestAccountConfigIsWhatTheServerOptionsSay parses the rendered configuration with nats-server's
// own configuration code and requires the same users and permissions as ServerUsers.
func TestAccountConfigIsWhatTheServerOptionsSay(t *testing.T) {
	t.Parallel()
	conf, err := AccountConfig(password)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server refuses the rendered configuration: %v\n%s", err, conf)
	}
	want := ServerUsers(nil, password)
	if len(opts.Users) != len(want) {
		t.Fatalf("%d users parsed, want %d", len(opts.Users), len(want))
	}
	for i, got := range opts.Users {
		if got.Account == nil || got.Account.Name != Account {
			t.Errorf("user %s in account %v, want %s", got.Username, got.Account, Account)
		}
		if got.Username != want[i].Username || got.Password != want[i].Password || !reflect.DeepEqual(got.Permissions, want[i].Permissions) {
			t.Errorf("parsed user %s %+v, want %s %+v", got.Username, got.Permissions, want[i].Username, want[i].Permissions)
		}
	}
}

// TestConfigShapeRoundTrips: ConfigPermissionsOf and PermissionsOf are inverse.
func TestConfigShapeRoundTrips(t *testing.T) {
	t.Parallel()
	for _, u := range Table() {
		if got := PermissionsOf(ConfigPermissionsOf(u.Permissions)); !reflect.DeepEqual(got, u.Permissions) {
			t.Errorf("%s: %+v, want %+v", u.Name, got, u.Permissions)
		}
	}
}

// helmValues is the part of the NATS Helm chart's values that declares accounts.
type helmValues struct {
	Config struct {
		Merge struct {
			Accounts map[string]struct {
				JetStream string       `json:"jetstream"`
				Users     []ConfigUser `json:"users"`
			} `json:"accounts"`
		} `json:"merge"`
	} `json:"config"`
}

// TestProdHelmValuesGrantTheTable requires deploy/k8s/prod/nats-values.yaml to declare exactly the
// table's users in account CIM, with JetStream enabled, each with the table's permissions.
func TestProdHelmValuesGrantTheTable(t *testing.T) {
	t.Parallel()
	const path = "../../deploy/k8s/prod/nats-values.yaml"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v helmValues
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	acc, ok := v.Config.Merge.Accounts[Account]
	if !ok {
		t.Fatalf("%s: no account %s under config.merge.accounts", path, Account)
	}
	if acc.JetStream != "enabled" {
		t.Errorf("%s: account %s has jetstream %q, want enabled", path, Account, acc.JetStream)
	}
	declared := map[string]*Permissions{}
	for _, u := range acc.Users {
		declared[u.User] = PermissionsOf(u.Permissions)
	}
	for _, u := range Table() {
		got, ok := declared[u.Name]
		if !ok {
			t.Errorf("%s: no user %s", path, u.Name)
			continue
		}
		delete(declared, u.Name)
		for _, d := range permissionDiff(got, u.Permissions) {
			t.Errorf("%s: user %s: %s", path, u.Name, d)
		}
	}
	for name := range declared {
		t.Errorf("%s: user %s is not in the table", path, name)
	}
}

// permissionDiff lists how got differs from want, subject by subject.
func permissionDiff(got, want *Permissions) []string {
	if (got == nil) != (want == nil) {
		return []string{fmt.Sprintf("permissions %+v, want %+v (nil: unrestricted)", got, want)}
	}
	if got == nil {
		return nil
	}
	var out []string
	list := func(what string, g, w []string) {
		var extra, missing []string
		for _, s := range g {
			if !slices.Contains(w, s) {
				extra = append(extra, s)
			}
		}
		for _, s := range w {
			if !slices.Contains(g, s) {
				missing = append(missing, s)
			}
		}
		if len(extra) > 0 {
			out = append(out, what+" has more than the table: "+strings.Join(extra, " "))
		}
		if len(missing) > 0 {
			out = append(out, what+" lacks: "+strings.Join(missing, " "))
		}
	}
	list("publish allow", got.PublishAllow, want.PublishAllow)
	list("publish deny", got.PublishDeny, want.PublishDeny)
	list("subscribe allow", got.SubscribeAllow, want.SubscribeAllow)
	list("subscribe deny", got.SubscribeDeny, want.SubscribeDeny)
	if got.AllowResponses != want.AllowResponses {
		out = append(out, fmt.Sprintf("allow_responses %v, want %v", got.AllowResponses, want.AllowResponses))
	}
	return out
}
