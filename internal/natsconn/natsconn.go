// Package natsconn holds the NATS connection settings every service shares (server URL,
// credentials, TLS, reconnection) and opens connections that reconnect forever and log their
// life as structured events.
package natsconn

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/cim-infra/registry/internal/config"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Flag names registered by Config.RegisterFlags. The environment variable behind each is
// config.EnvName(flag), for example NATS_URL.
const (
	FlagURL            = "nats-url"
	FlagCreds          = "nats-creds"
	FlagNKey           = "nats-nkey"
	FlagUser           = "nats-user"
	FlagPassword       = "nats-password"
	FlagToken          = "nats-token"
	FlagTLSCA          = "nats-tls-ca"
	FlagTLSCert        = "nats-tls-cert"
	FlagTLSKey         = "nats-tls-key"
	FlagConnectTimeout = "nats-connect-timeout"
	FlagReconnectWait  = "nats-reconnect-wait"
	FlagMaxReconnects  = "nats-max-reconnects"
	FlagInboxPrefix    = "nats-inbox-prefix"
)

// Defaults used where a Config leaves a tuning field at zero.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultReconnectWait  = 2 * time.Second
)

// ErrInvalidConfig is wrapped by every error Config.Options returns.
var ErrInvalidConfig = errors.New("natsconn: invalid configuration")

// Config is how a service reaches NATS. The zero value connects to nats.DefaultURL without
// credentials and reconnects forever.
type Config struct {
	// URL is one server URL or a comma-separated list; empty means nats.DefaultURL.
	URL string
	// Name is the connection name servers show in monitoring (connz); the service sets it.
	Name string

	// At most one authentication method: CredsFile, NKeySeedFile, User and Password, or Token.

	// CredsFile is a user credentials file (JWT and seed), as issued in operator mode.
	CredsFile string
	// NKeySeedFile is a file holding a user nkey seed.
	NKeySeedFile string
	// User and Password authenticate with a user name and password; both or neither.
	User     string
	Password string
	// Token authenticates with a token.
	Token string

	// TLSCA is a PEM file of the CAs trusted to sign the server's certificate; empty means the
	// system roots.
	TLSCA string
	// TLSCert and TLSKey are the PEM client certificate and key, for servers that verify clients;
	// both or neither.
	TLSCert string
	TLSKey  string

	// ConnectTimeout bounds one attempt to connect to one server; zero means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// ReconnectWait is the pause between attempts to reach a server; zero means
	// DefaultReconnectWait.
	ReconnectWait time.Duration
	// MaxReconnects is the number of reconnection attempts per server before the connection gives
	// up and closes; zero or negative means forever, which is what a long-running service wants.
	MaxReconnects int
	// ConnectAttempts bounds the attempts Connect makes while no server can be reached, after
	// which it fails with an *UnreachableError; zero or negative means until its context ends, which is
	// what a service starting before NATS wants. A command-line client sets it. There is no flag.
	ConnectAttempts int

	// InboxPrefix replaces nats.go's "_INBOX" in the reply subjects of this connection's requests
	// (its own requests, JetStream API calls, direct gets, consumers' pulls); empty keeps
	// "_INBOX". A user whose subscribe permission covers only <prefix>.> cannot read the replies
	// meant for other users, which all of them could if everyone subscribed to _INBOX.>.
	InboxPrefix string

	// InProcess, when set, connects to that server inside this process (nats.InProcessServer)
	// instead of dialling URL: no socket, no system call per message. A service that started
	// an embedded server sets it for its own connection; there is no flag for it.
	InProcess nats.InProcessConnProvider
}

// RegisterFlags defines the nats-* flags on fs, storing into c. The defaults shown are c's
// current values, so a service sets the URL default it wants (or leaves it empty) before calling.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.ReconnectWait == 0 {
		c.ReconnectWait = DefaultReconnectWait
	}
	fs.StringVar(&c.URL, FlagURL, c.URL, "NATS server URL, or a comma-separated list of URLs")
	fs.StringVar(&c.CredsFile, FlagCreds, c.CredsFile, "NATS user credentials file (JWT and nkey seed)")
	fs.StringVar(&c.NKeySeedFile, FlagNKey, c.NKeySeedFile, "file holding a NATS user nkey seed")
	fs.StringVar(&c.User, FlagUser, c.User, "NATS user name (with -"+FlagPassword+")")
	fs.StringVar(&c.Password, FlagPassword, c.Password, "NATS password; prefer the environment variable, which ps does not show")
	fs.StringVar(&c.Token, FlagToken, c.Token, "NATS authentication token; prefer the environment variable, which ps does not show")
	fs.StringVar(&c.TLSCA, FlagTLSCA, c.TLSCA, "PEM file of CAs trusted to sign the NATS server certificate (default: system roots)")
	fs.StringVar(&c.TLSCert, FlagTLSCert, c.TLSCert, "PEM client certificate for NATS (with -"+FlagTLSKey+")")
	fs.StringVar(&c.TLSKey, FlagTLSKey, c.TLSKey, "PEM private key of the NATS client certificate")
	fs.DurationVar(&c.ConnectTimeout, FlagConnectTimeout, c.ConnectTimeout, "timeout of one attempt to connect to one NATS server")
	fs.DurationVar(&c.ReconnectWait, FlagReconnectWait, c.ReconnectWait, "pause between attempts to reach a NATS server")
	fs.IntVar(&c.MaxReconnects, FlagMaxReconnects, c.MaxReconnects, "reconnection attempts per NATS server before giving up; 0 or less: forever")
	fs.StringVar(&c.InboxPrefix, FlagInboxPrefix, c.InboxPrefix, "prefix of this connection's reply subjects instead of _INBOX, such as _INBOX_<user> where the NATS user may subscribe only to its own inboxes")
}

// URLOrDefault returns c.URL, or nats.DefaultURL when it is empty. An in-process connection
// (InProcess) dials no URL.
func (c Config) URLOrDefault() string {
	if c.URL == "" {
		return nats.DefaultURL
	}
	return c.URL
}

// Options checks c and returns the nats.go options it stands for (authentication, TLS,
// timeouts, reconnection, inbox prefix; no handlers). Files are read now, so a missing or
// malformed file is reported here, naming its flag, rather than at connect time. Every error
// wraps ErrInvalidConfig.
func (c Config) Options() ([]nats.Option, error) {
	var auth []string
	var opts []nats.Option
	if c.CredsFile != "" {
		auth = append(auth, FlagCreds)
		if err := checkCreds(c.CredsFile); err != nil {
			return nil, invalid(FlagCreds, "%q: %v", c.CredsFile, err)
		}
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.NKeySeedFile != "" {
		auth = append(auth, FlagNKey)
		opt, err := nats.NkeyOptionFromSeed(c.NKeySeedFile)
		if err != nil {
			return nil, invalid(FlagNKey, "%q: %v", c.NKeySeedFile, err)
		}
		opts = append(opts, opt)
	}
	switch {
	case c.User != "" && c.Password != "":
		auth = append(auth, FlagUser)
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	case c.User != "":
		return nil, invalid(FlagPassword, "is empty but %s is set; give both or neither", flagRef(FlagUser))
	case c.Password != "":
		return nil, invalid(FlagUser, "is empty but %s is set; give both or neither", flagRef(FlagPassword))
	}
	if c.Token != "" {
		auth = append(auth, FlagToken)
		opts = append(opts, nats.Token(c.Token))
	}
	if len(auth) > 1 {
		refs := make([]string, len(auth))
		for i, f := range auth {
			refs[i] = flagRef(f)
		}
		return nil, fmt.Errorf("%w: more than one authentication method (%s); give at most one", ErrInvalidConfig, strings.Join(refs, ", "))
	}

	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
		if err := tryOption(nats.RootCAs(c.TLSCA)); err != nil {
			return nil, invalid(FlagTLSCA, "%q: %v", c.TLSCA, err)
		}
	}
	switch {
	case c.TLSCert != "" && c.TLSKey != "":
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
		if err := tryOption(nats.ClientCert(c.TLSCert, c.TLSKey)); err != nil {
			return nil, invalid(FlagTLSCert, "%q with key %q: %v", c.TLSCert, c.TLSKey, err)
		}
	case c.TLSCert != "":
		return nil, invalid(FlagTLSKey, "is empty but %s is set; give both or neither", flagRef(FlagTLSCert))
	case c.TLSKey != "":
		return nil, invalid(FlagTLSCert, "is empty but %s is set; give both or neither", flagRef(FlagTLSKey))
	}

	if c.ConnectTimeout < 0 {
		return nil, invalid(FlagConnectTimeout, "%s is negative", c.ConnectTimeout)
	}
	if c.ReconnectWait < 0 {
		return nil, invalid(FlagReconnectWait, "%s is negative", c.ReconnectWait)
	}
	timeout, wait, maxReconnects := c.ConnectTimeout, c.ReconnectWait, c.MaxReconnects
	if timeout == 0 {
		timeout = DefaultConnectTimeout
	}
	if wait == 0 {
		wait = DefaultReconnectWait
	}
	if maxReconnects <= 0 {
		maxReconnects = -1
	}
	opts = append(opts, nats.Timeout(timeout), nats.ReconnectWait(wait), nats.MaxReconnects(maxReconnects))
	if c.Name != "" {
		opts = append(opts, nats.Name(c.Name))
	}
	if c.InboxPrefix != "" {
		if err := checkInboxPrefix(c.InboxPrefix); err != nil {
			return nil, invalid(FlagInboxPrefix, "%q: %v", c.InboxPrefix, err)
		}
		opts = append(opts, nats.CustomInboxPrefix(c.InboxPrefix))
	}
	if c.InProcess != nil {
		opts = append(opts, nats.InProcessServer(c.InProcess))
	}
	return opts, nil
}

// checkInboxPrefix requires a literal subject of one or more tokens: nats.go appends ".<id>" to
// it, and a permission grants "<prefix>.>". nats.go itself refuses only wildcards and a final
// '.', with a message that names no flag; a space or an empty token would make subjects the
// server refuses only once requests are sent.
func checkInboxPrefix(prefix string) error {
	if strings.ContainsFunc(prefix, unicode.IsSpace) {
		return errors.New("contains white space")
	}
	for token := range strings.SplitSeq(prefix, ".") {
		switch token {
		case "":
			return errors.New("has an empty token (a leading, trailing or doubled '.')")
		case "*", ">":
			return fmt.Errorf("has the wildcard %q; give a literal subject", token)
		}
		if strings.ContainsAny(token, "*>") {
			return fmt.Errorf("token %q holds a wildcard character", token)
		}
	}
	return nil
}

// flagRef names a flag with its environment variable, as a person may have used either.
func flagRef(flagName string) string {
	return fmt.Sprintf("-%s (%s)", flagName, config.EnvName(flagName))
}

func invalid(flagName, format string, args ...any) error {
	return fmt.Errorf("%w: %s %s", ErrInvalidConfig, flagRef(flagName), fmt.Sprintf(format, args...))
}

// tryOption applies opt to scratch options: nats.go's TLS options load their files when
// applied, which is how a bad file is found before connecting.
func tryOption(opt nats.Option) error {
	var scratch nats.Options
	return opt(&scratch)
}

// checkCreds reads a credentials file the way nats.go will, without its JWT's validity.
func checkCreds(path string) error {
	contents, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	kp, err := nkeys.ParseDecoratedUserNKey(contents)
	if err != nil {
		return fmt.Errorf("no user nkey seed: %w", err)
	}
	kp.Wipe()
	return nil
}
