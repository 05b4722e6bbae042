package accesscontrol

import (
	"slices"

	"github.com/nats-io/nats-server/v2/server"
)

// ServerPermissions returns p as nats-server permissions (nil for an unrestricted user). Empty
// lists stay nil, as nats-server's configuration parser leaves them.
func ServerPermissions(p *Permissions) *server.Permissions {
	if p == nil {
		return nil
	}
	sp := &server.Permissions{
		Publish:   subjectPermission(p.PublishAllow, p.PublishDeny),
		Subscribe: subjectPermission(p.SubscribeAllow, p.SubscribeDeny),
	}
	if p.AllowResponses {
		sp.Response = &server.ResponsePermission{
			MaxMsgs: server.DEFAULT_ALLOW_RESPONSE_MAX_MSGS,
			Expires: server.DEFAULT_ALLOW_RESPONSE_EXPIRATION,
		}
	}
	return sp
}

func subjectPermission(allow, deny []string) *server.SubjectPermission {
	if len(allow) == 0 && len(deny) == 0 {
		return nil
	}
	return &server.SubjectPermission{Allow: clip(allow), Deny: clip(deny)}
}

func clip(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

// ServerUsers returns the table's users as nats-server users of account acc (nil: the global
// account), each with the password password(name). Put them in server.Options.Users of an
// embedded server; the account must have JetStream enabled.
func ServerUsers(acc *server.Account, password func(user string) string) []*server.User {
	var users []*server.User
	for _, u := range Table() {
		users = append(users, &server.User{
			Username:    u.Name,
			Password:    password(u.Name),
			Permissions: ServerPermissions(u.Permissions),
			Account:     acc,
		})
	}
	return users
}
