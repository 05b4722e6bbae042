package config

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

func TestEnvName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"nats-url":             "NATS_URL",
		"http-addr":            "HTTP_ADDR",
		"cache.size":           "CACHE_SIZE",
		"nats-connect-timeout": "NATS_CONNECT_TIMEOUT",
		"v":                    "V",
	} {
		if got := EnvName(in); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

type settings struct {
	url     string
	size    int
	verbose bool
	timeout time.Duration
}

func newFlagSet(s *settings) *flag.FlagSet {
	fs := flag.NewFlagSet("svc", flag.ContinueOnError)
	fs.SetOutput(&bytes.Buffer{})
	fs.StringVar(&s.url, "nats-url", "nats://127.0.0.1:4222", "NATS server URL")
	fs.IntVar(&s.size, "cache-size", 100, "aggregates kept in memory")
	fs.BoolVar(&s.verbose, "verbose", false, "say more")
	fs.DurationVar(&s.timeout, "request-timeout", 5*time.Second, "request timeout")
	return fs
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseSources(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want settings
	}{
		{"defaults", nil, nil, settings{"nats://127.0.0.1:4222", 100, false, 5 * time.Second}},
		{
			"environment fills every type",
			nil,
			map[string]string{"NATS_URL": "nats://n:4222", "CACHE_SIZE": "7", "VERBOSE": "true", "REQUEST_TIMEOUT": "250ms"},
			settings{"nats://n:4222", 7, true, 250 * time.Millisecond},
		},
		{
			"command line wins over environment",
			[]string{"-nats-url=nats://flag:4222", "-cache-size", "9"},
			map[string]string{"NATS_URL": "nats://env:4222", "CACHE_SIZE": "7", "REQUEST_TIMEOUT": "1m"},
			settings{"nats://flag:4222", 9, false, time.Minute},
		},
		{"empty variable is a value", nil, map[string]string{"NATS_URL": ""}, settings{"", 100, false, 5 * time.Second}},
		{"unrelated variables are ignored", nil, map[string]string{"nats-url": "x", "NATSURL": "y"}, settings{"nats://127.0.0.1:4222", 100, false, 5 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got settings
			fs := newFlagSet(&got)
			if err := ParseWithLookup(fs, tc.args, env(tc.env)); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseBadEnvironmentNamesTheVariable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ variable, value string }{
		{"CACHE_SIZE", "many"},
		{"VERBOSE", "perhaps"},
		{"REQUEST_TIMEOUT", "5"},
		{"REQUEST_TIMEOUT", ""},
	} {
		var s settings
		err := ParseWithLookup(newFlagSet(&s), nil, env(map[string]string{tc.variable: tc.value}))
		var envErr *EnvError
		if !errors.As(err, &envErr) {
			t.Fatalf("%s=%q: error %v is not an *EnvError", tc.variable, tc.value, err)
		}
		if envErr.Var != tc.variable || envErr.Value != tc.value || !strings.Contains(err.Error(), tc.variable) {
			t.Errorf("%s=%q: error %q does not name the variable and value", tc.variable, tc.value, err)
		}
	}
}

func TestParseReportsEveryBadVariable(t *testing.T) {
	t.Parallel()
	var s settings
	err := ParseWithLookup(newFlagSet(&s), nil, env(map[string]string{"CACHE_SIZE": "x", "VERBOSE": "y"}))
	if err == nil || !strings.Contains(err.Error(), "CACHE_SIZE") || !strings.Contains(err.Error(), "VERBOSE") {
		t.Fatalf("error = %v, want both variables named", err)
	}
}

func TestParseCommandLineErrorsAndHelp(t *testing.T) {
	t.Parallel()
	var s settings
	if err := ParseWithLookup(newFlagSet(&s), []string{"-h"}, env(nil)); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: error = %v, want flag.ErrHelp", err)
	}
	if err := ParseWithLookup(newFlagSet(&s), []string{"-cache-size=x"}, env(nil)); err == nil {
		t.Error("bad flag value accepted")
	}
}

func TestParseRefusesCollidingFlags(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("svc", flag.ContinueOnError)
	fs.String("cache-size", "", "")
	fs.String("cache.size", "", "")
	if err := ParseWithLookup(fs, nil, env(nil)); !errors.Is(err, ErrEnvCollision) {
		t.Fatalf("error = %v, want ErrEnvCollision", err)
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	var s settings
	got := Describe(newFlagSet(&s))
	want := []Setting{
		{Flag: "cache-size", Env: "CACHE_SIZE", Default: "100", Usage: "aggregates kept in memory"},
		{Flag: "nats-url", Env: "NATS_URL", Default: "nats://127.0.0.1:4222", Usage: "NATS server URL"},
		{Flag: "request-timeout", Env: "REQUEST_TIMEOUT", Default: "5s", Usage: "request timeout"},
		{Flag: "verbose", Env: "VERBOSE", Default: "false", Usage: "say more"},
	}
	if len(got) != len(want) {
		t.Fatalf("Describe = %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Describe[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestUsageListsVariables(t *testing.T) {
	t.Parallel()
	var s settings
	fs := newFlagSet(&s)
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	Usage(fs)()
	for _, want := range []string{"-nats-url", "NATS_URL", `default "100"`, "request timeout"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, buf.String())
		}
	}
}
