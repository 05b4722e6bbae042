package servicemain

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// testConfig is a service's settings: the shared ones and one of its own.
type testConfig struct {
	Common
	Greeting string
}

func (c *testConfig) RegisterFlags(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs, "nats://127.0.0.1:4222", ":8080")
	fs.StringVar(&c.Greeting, "greeting", "hello", "what to say")
}

func testService(runErr error, got *testConfig) Service {
	return New("svc", func(_ context.Context, cfg testConfig, _ zerolog.Logger) error {
		*got = cfg
		return runErr
	})
}

func TestRunExitCodes(t *testing.T) {
	var got testConfig
	var stderr bytes.Buffer
	ctx := context.Background()
	if code := testService(nil, &got).Run(ctx, []string{"-greeting", "hi", "-shutdown-timeout", "3s"}, &stderr); code != 0 || got.Greeting != "hi" || got.ShutdownTimeout.String() != "3s" {
		t.Fatalf("clean run: code %d, settings %+v", code, got)
	}
	if got.NATS.URL != "nats://127.0.0.1:4222" || got.HTTP.Addr != ":8080" || got.Log.Level != "info" {
		t.Fatalf("shared defaults: %+v", got.Common)
	}
	if code := testService(errors.New("boom"), &got).Run(ctx, nil, &stderr); code != 1 {
		t.Fatalf("failed run: code %d, want 1", code)
	}
	stderr.Reset()
	if code := testService(nil, &got).Run(ctx, []string{"-nope"}, &stderr); code != 2 || !strings.Contains(stderr.String(), "nope") {
		t.Fatalf("bad flag: code %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	if code := testService(nil, &got).Run(ctx, []string{"-log-level", "loud"}, &stderr); code != 2 {
		t.Fatalf("bad log level: code %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	if code := testService(nil, &got).Run(ctx, []string{"-h"}, &stderr); code != 0 || !strings.Contains(stderr.String(), "GREETING") || !strings.Contains(stderr.String(), "SHUTDOWN_TIMEOUT") {
		t.Fatalf("help: code %d, stderr %q (want the environment variables named)", code, stderr.String())
	}
	t.Setenv("GREETING", "from env")
	t.Setenv("NATS_URL", "nats://elsewhere:4222")
	if code := testService(nil, &got).Run(ctx, nil, &stderr); code != 0 || got.Greeting != "from env" || got.NATS.URL != "nats://elsewhere:4222" {
		t.Fatalf("environment: code %d, settings %+v", code, got)
	}
	stderr.Reset()
	if code := testService(nil, &got).Run(ctx, []string{"-greeting", "logged"}, &stderr); code != 0 || !strings.Contains(stderr.String(), `"message":"svc stopped"`) {
		t.Fatalf("the service's log goes to stderr: code %d, stderr %q", code, stderr.String())
	}
}
