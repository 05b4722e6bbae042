package natsconn

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/config"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

func writeFile(t *testing.T, name, contents string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(contents), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func userSeedFile(t *testing.T) (path, public string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	public, err = kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "user.nk", string(seed)), public
}

func TestOptionsValidation(t *testing.T) {
	t.Parallel()
	p := newPKI(t, "options")
	seed, _ := userSeedFile(t)
	garbage := writeFile(t, "garbage", "not a key\n")
	missing := filepath.Join(t.TempDir(), "missing")

	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr []string // substrings of the error; nil means valid
	}{
		{"zero value", Config{}, nil},
		{"user and password", Config{User: "u", Password: "p"}, nil},
		{"token", Config{Token: "t"}, nil},
		{"nkey", Config{NKeySeedFile: seed}, nil},
		{"tls ca only", Config{TLSCA: p.CA}, nil},
		{"tls client cert", Config{TLSCA: p.CA, TLSCert: p.ClientCert, TLSKey: p.ClientKey}, nil},
		{"user without password", Config{User: "u"}, []string{"-nats-password (NATS_PASSWORD)", "-nats-user"}},
		{"password without user", Config{Password: "p"}, []string{"-nats-user (NATS_USER)"}},
		{"token and user", Config{Token: "t", User: "u", Password: "p"}, []string{"more than one", "-nats-user", "-nats-token"}},
		{"nkey and token", Config{NKeySeedFile: seed, Token: "t"}, []string{"more than one", "-nats-nkey", "-nats-token"}},
		{"creds and nkey", Config{CredsFile: seed, NKeySeedFile: seed}, []string{"more than one", "-nats-creds", "-nats-nkey"}},
		{"missing nkey file", Config{NKeySeedFile: missing}, []string{"-nats-nkey (NATS_NKEY)", missing}},
		{"garbage nkey file", Config{NKeySeedFile: garbage}, []string{"-nats-nkey", garbage}},
		{"missing creds file", Config{CredsFile: missing}, []string{"-nats-creds (NATS_CREDS)", missing}},
		{"garbage creds file", Config{CredsFile: garbage}, []string{"-nats-creds", "seed"}},
		{"missing ca", Config{TLSCA: missing}, []string{"-nats-tls-ca (NATS_TLS_CA)", missing}},
		{"garbage ca", Config{TLSCA: garbage}, []string{"-nats-tls-ca", garbage}},
		{"cert without key", Config{TLSCert: p.ClientCert}, []string{"-nats-tls-key (NATS_TLS_KEY) is empty", "-nats-tls-cert"}},
		{"key without cert", Config{TLSKey: p.ClientKey}, []string{"-nats-tls-cert (NATS_TLS_CERT) is empty"}},
		{"cert with wrong key", Config{TLSCert: p.ClientCert, TLSKey: p.ServerKey}, []string{"-nats-tls-cert", p.ClientCert}},
		{"negative timeout", Config{ConnectTimeout: -time.Second}, []string{"-nats-connect-timeout", "-1s"}},
		{"negative reconnect wait", Config{ReconnectWait: -time.Second}, []string{"-nats-reconnect-wait"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts, err := tc.cfg.Options()
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				var o nats.Options
				for _, opt := range opts {
					if err := opt(&o); err != nil {
						t.Fatalf("option fails: %v", err)
					}
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error = %v, want ErrInvalidConfig", err)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

func TestOptionsTuning(t *testing.T) {
	t.Parallel()
	apply := func(c Config) nats.Options {
		opts, err := c.Options()
		if err != nil {
			t.Fatal(err)
		}
		o := nats.GetDefaultOptions()
		for _, opt := range opts {
			if err := opt(&o); err != nil {
				t.Fatal(err)
			}
		}
		return o
	}
	o := apply(Config{Name: "svc"})
	if o.MaxReconnect != -1 || o.Timeout != DefaultConnectTimeout || o.ReconnectWait != DefaultReconnectWait || o.Name != "svc" {
		t.Errorf("zero config: MaxReconnect=%d Timeout=%s ReconnectWait=%s Name=%q", o.MaxReconnect, o.Timeout, o.ReconnectWait, o.Name)
	}
	o = apply(Config{MaxReconnects: 3, ConnectTimeout: time.Second, ReconnectWait: 10 * time.Millisecond})
	if o.MaxReconnect != 3 || o.Timeout != time.Second || o.ReconnectWait != 10*time.Millisecond {
		t.Errorf("tuned config: MaxReconnect=%d Timeout=%s ReconnectWait=%s", o.MaxReconnect, o.Timeout, o.ReconnectWait)
	}
}

func TestRegisterFlagsFromEnvironment(t *testing.T) {
	t.Parallel()
	c := Config{URL: "nats://default:4222"}
	fs := flag.NewFlagSet("svc", flag.ContinueOnError)
	c.RegisterFlags(fs)

	want := []string{FlagURL, FlagCreds, FlagNKey, FlagUser, FlagPassword, FlagToken, FlagTLSCA, FlagTLSCert,
		FlagTLSKey, FlagConnectTimeout, FlagReconnectWait, FlagMaxReconnects, FlagInboxPrefix}
	settings := map[string]config.Setting{}
	for _, s := range config.Describe(fs) {
		settings[s.Flag] = s
	}
	if len(settings) != len(want) {
		t.Errorf("registered %d flags, want %d: %v", len(settings), len(want), settings)
	}
	for _, f := range want {
		if _, ok := settings[f]; !ok {
			t.Errorf("flag -%s not registered", f)
		}
	}
	if settings[FlagURL].Default != "nats://default:4222" || settings[FlagConnectTimeout].Default != "5s" {
		t.Errorf("defaults: url %q timeout %q", settings[FlagURL].Default, settings[FlagConnectTimeout].Default)
	}

	env := map[string]string{
		"NATS_URL": "nats://a:4222,nats://b:4222", "NATS_USER": "svc", "NATS_PASSWORD": "secret",
		"NATS_TLS_CA": "/ca.pem", "NATS_RECONNECT_WAIT": "250ms", "NATS_MAX_RECONNECTS": "10",
	}
	err := config.ParseWithLookup(fs, []string{"-nats-user=cli"}, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	wantCfg := Config{URL: "nats://a:4222,nats://b:4222", User: "cli", Password: "secret", TLSCA: "/ca.pem",
		ConnectTimeout: DefaultConnectTimeout, ReconnectWait: 250 * time.Millisecond, MaxReconnects: 10}
	if c != wantCfg {
		t.Errorf("config = %+v\nwant     %+v", c, wantCfg)
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                       "nats://127.0.0.1:4222",
		"nats://u:secret@h:4222, nats://u:secret@g:1": "nats://u:xxxxx@h:4222,nats://u:xxxxx@g:1",
		"nats://s3cr3t-token@h:4222":                  "nats://xxxxx@h:4222",
		"nats://u:secret@h:bad port":                  "(unparsable URL)",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}
