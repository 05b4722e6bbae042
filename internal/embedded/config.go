package embedded

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// Flag names registered by Config.RegisterFlags; the environment variable behind each is
// config.EnvName(flag), for example EMBEDDED_STORE_DIR.
const (
	FlagStoreDir = "embedded-store-dir"
	FlagHost     = "embedded-host"
	FlagPort     = "embedded-port"
	FlagSync     = "embedded-sync"
)

// Defaults used where a Config leaves a field at its zero value.
const (
	DefaultStoreDir = "./data"
	DefaultHost     = "127.0.0.1"
	DefaultPort     = 4222
)

// RandomPort as Config.Port lets the server pick a free port (for tests).
const RandomPort = -1

// ErrInvalidSyncPolicy is returned by SyncPolicy.Set for a value that is neither "always" nor a
// positive duration.
var ErrInvalidSyncPolicy = errors.New("embedded: invalid sync policy")

// SyncPolicy says when JetStream forces its writes to disk (fsync).
//
// The zero value, written "always", syncs every write before it is acknowledged: an
// acknowledged command survives a power loss, at a cost in write latency. An interval such as
// "2m" (nats-server's own default) syncs in the background that often and acknowledges before
// the data is on disk; the Jepsen analysis of NATS 2.12.1 lost acknowledged writes that way.
// It implements flag.Value.
type SyncPolicy struct {
	// Interval is the background sync period; zero means sync every write.
	Interval time.Duration
}

// Always reports whether every write is synced before it is acknowledged.
func (p SyncPolicy) Always() bool { return p.Interval == 0 }

// String returns "always" or the interval, as Set accepts them.
func (p SyncPolicy) String() string {
	if p.Always() {
		return "always"
	}
	return p.Interval.String()
}

// Set parses "always" or a positive duration such as "2m" or "500ms".
func (p *SyncPolicy) Set(s string) error {
	if s == "always" {
		p.Interval = 0
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("%w: %q (want \"always\" or a positive duration such as \"2m\")", ErrInvalidSyncPolicy, s)
	}
	p.Interval = d
	return nil
}

// Config describes the embedded server. Its zero value means the defaults: file storage in
// ./data, listening on 127.0.0.1:4222, every write synced.
type Config struct {
	// StoreDir is where JetStream keeps its files (in a "jetstream" subdirectory).
	StoreDir string
	// Host is the interface to listen on; the default keeps the server private to the machine.
	Host string
	// Port is the client port; RandomPort picks a free one.
	Port int
	// Sync is the fsync policy.
	Sync SyncPolicy
}

// RegisterFlags defines the embedded-* flags on fs, storing into c; zero fields are set to
// their defaults first so that the help shows them.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	*c = c.withDefaults()
	fs.StringVar(&c.StoreDir, FlagStoreDir, c.StoreDir, "directory of the embedded NATS server's JetStream files (used without a NATS URL)")
	fs.StringVar(&c.Host, FlagHost, c.Host, "interface the embedded NATS server listens on")
	fs.IntVar(&c.Port, FlagPort, c.Port, "client port of the embedded NATS server")
	fs.Var(&c.Sync, FlagSync, `when the embedded server fsyncs: "always" (every write, before acknowledging) or an interval such as "2m" (faster, may lose acknowledged writes on power loss)`)
}

func (c Config) withDefaults() Config {
	if c.StoreDir == "" {
		c.StoreDir = DefaultStoreDir
	}
	if c.Host == "" {
		c.Host = DefaultHost
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	return c
}
