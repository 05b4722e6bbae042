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

func testService(runErr error, got *string) Service {
	var greeting string
	return Service{
		Name:          "svc",
		RegisterFlags: func(fs *flag.FlagSet) { fs.StringVar(&greeting, "greeting", "hello", "what to say") },
		Logger:        func(string) (zerolog.Logger, error) { return zerolog.Nop(), nil },
		Run: func(context.Context, zerolog.Logger) error {
			*got = greeting
			return runErr
		},
	}
}

func TestRunExitCodes(t *testing.T) {
	var got string
	var stderr bytes.Buffer
	ctx := context.Background()
	if code := Run(ctx, testService(nil, &got), []string{"-greeting", "hi"}, &stderr); code != 0 || got != "hi" {
		t.Fatalf("clean run: code %d, flag %q", code, got)
	}
	if code := Run(ctx, testService(errors.New("boom"), &got), nil, &stderr); code != 1 {
		t.Fatalf("failed run: code %d, want 1", code)
	}
	stderr.Reset()
	if code := Run(ctx, testService(nil, &got), []string{"-nope"}, &stderr); code != 2 || !strings.Contains(stderr.String(), "nope") {
		t.Fatalf("bad flag: code %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	if code := Run(ctx, testService(nil, &got), []string{"-h"}, &stderr); code != 0 || !strings.Contains(stderr.String(), "GREETING") {
		t.Fatalf("help: code %d, stderr %q (want the environment variable named)", code, stderr.String())
	}
	t.Setenv("GREETING", "from env")
	if code := Run(ctx, testService(nil, &got), nil, &stderr); code != 0 || got != "from env" {
		t.Fatalf("environment: code %d, flag %q", code, got)
	}
}
