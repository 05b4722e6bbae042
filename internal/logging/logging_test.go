package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

func TestNewJSONCarriesServiceAndUTCTimestamp(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, err := NewTo(&buf, "command-service", "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.Info().Str("aggregate_id", "a1").Msg("appended")
	log.Debug().Msg("hidden at info")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want 1 line (debug filtered), got %d: %q", len(lines), buf.String())
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil {
		t.Fatalf("not JSON: %v: %s", err, lines[0])
	}
	if ev["service"] != "command-service" || ev["level"] != "info" || ev["message"] != "appended" || ev["aggregate_id"] != "a1" {
		t.Errorf("unexpected event: %v", ev)
	}
	ts, _ := ev["time"].(string)
	parsed, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		t.Fatalf("time %q is not RFC 3339: %v", ts, err)
	}
	if !strings.HasSuffix(ts, "Z") || parsed.Location() != time.UTC {
		t.Errorf("time %q is not UTC", ts)
	}
}

func TestNewConsole(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, err := NewTo(&buf, "projector", "debug", "console")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug().Msg("hello")
	if out := buf.String(); !strings.Contains(out, "hello") || !strings.Contains(out, "projector") || json.Valid(buf.Bytes()) {
		t.Errorf("console output = %q", out)
	}
}

func TestNewRejectsBadSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		level, format string
		want          error
	}{
		{"loud", "json", ErrInvalidLevel},
		{"1", "json", ErrInvalidLevel},
		{"INFO", "json", ErrInvalidLevel},
		{"info", "xml", ErrInvalidFormat},
	} {
		_, err := NewTo(&bytes.Buffer{}, "s", tc.level, tc.format)
		if !errors.Is(err, tc.want) {
			t.Errorf("NewTo(%q, %q) error = %v, want %v", tc.level, tc.format, err, tc.want)
		}
		if err != nil && !strings.Contains(err.Error(), `"`+tc.level+`"`) && !strings.Contains(err.Error(), `"`+tc.format+`"`) {
			t.Errorf("error %q does not name the bad value", err)
		}
	}
}

func TestRegisterFlags(t *testing.T) {
	t.Parallel()
	var c Config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if c.Level != "info" || c.Format != "json" {
		t.Fatalf("defaults = %+v", c)
	}
	if err := fs.Parse([]string{"-log-level=warn", "-log-format=console"}); err != nil {
		t.Fatal(err)
	}
	if c.Level != "warn" || c.Format != "console" {
		t.Fatalf("parsed = %+v", c)
	}
	if _, err := c.Logger("s"); err != nil {
		t.Fatal(err)
	}
}
