package accesscontrol

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// ConfigUser is one user in the shape of a nats-server configuration file's users list, which
// is also the shape of the NATS Helm chart's config.merge.accounts.<account>.users values.
// Marshalled to JSON (or YAML, with the same field names) it is valid nats-server configuration.
type ConfigUser struct {
	User        string             `json:"user"`
	Password    string             `json:"password,omitempty"`
	Permissions *ConfigPermissions `json:"permissions,omitempty"`
}

// ConfigPermissions is a user's permissions block.
type ConfigPermissions struct {
	Publish        *ConfigSubjects `json:"publish,omitempty"`
	Subscribe      *ConfigSubjects `json:"subscribe,omitempty"`
	AllowResponses bool            `json:"allow_responses,omitempty"`
}

// ConfigSubjects is an allow and a deny list.
type ConfigSubjects struct {
	Allow []string `json:"allow,omitempty"`
	Deny  []string `json:"deny,omitempty"`
}

// ConfigUsers renders the table in configuration shape, each user with the password
// password(name): for the Helm chart, a reference such as "<< $CIM_CLIENT_PASSWORD >>".
func ConfigUsers(password func(user string) string) []ConfigUser {
	var users []ConfigUser
	for _, u := range Table() {
		users = append(users, ConfigUser{User: u.Name, Password: password(u.Name), Permissions: ConfigPermissionsOf(u.Permissions)})
	}
	return users
}

// ConfigPermissionsOf returns p in configuration shape (nil for an unrestricted user).
func ConfigPermissionsOf(p *Permissions) *ConfigPermissions {
	if p == nil {
		return nil
	}
	cp := &ConfigPermissions{AllowResponses: p.AllowResponses}
	if len(p.PublishAllow)+len(p.PublishDeny) > 0 {
		cp.Publish = &ConfigSubjects{Allow: clip(p.PublishAllow), Deny: clip(p.PublishDeny)}
	}
	if len(p.SubscribeAllow)+len(p.SubscribeDeny) > 0 {
		cp.Subscribe = &ConfigSubjects{Allow: clip(p.SubscribeAllow), Deny: clip(p.SubscribeDeny)}
	}
	return cp
}

// PermissionsOf is the inverse of ConfigPermissionsOf.
func PermissionsOf(cp *ConfigPermissions) *Permissions {
	if cp == nil {
		return nil
	}
	p := &Permissions{AllowResponses: cp.AllowResponses}
	if cp.Publish != nil {
		p.PublishAllow, p.PublishDeny = clip(cp.Publish.Allow), clip(cp.Publish.Deny)
	}
	if cp.Subscribe != nil {
		p.SubscribeAllow, p.SubscribeDeny = clip(cp.Subscribe.Allow), clip(cp.Subscribe.Deny)
	}
	return p
}

// AccountConfig renders a nats-server configuration fragment (JSON, which nats-server's
// configuration parser reads) declaring the account with JetStream enabled and the table's
// users in it.
func AccountConfig(password func(user string) string) ([]byte, error) {
	doc := map[string]any{
		"accounts": map[string]any{
			Account: map[string]any{
				"jetstream": "enabled",
				"users":     ConfigUsers(password),
			},
		},
	}
	// nats-server's parser knows no \u escapes: ">" must stay as it is.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("accesscontrol: render account configuration: %w", err)
	}
	return b.Bytes(), nil
}
