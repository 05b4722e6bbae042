// Package logging builds the zerolog logger every service uses: one JSON object per line (or a
// readable console format for people at a terminal), timestamps in RFC 3339 with nanoseconds in
// UTC, and a "service" field on every event.
package logging

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
)

// Formats accepted by New.
const (
	FormatJSON    = "json"
	FormatConsole = "console"
)

// ErrInvalidLevel is returned for a log level zerolog does not know.
var ErrInvalidLevel = errors.New("logging: invalid level")

// ErrInvalidFormat is returned for a format other than FormatJSON or FormatConsole.
var ErrInvalidFormat = errors.New("logging: invalid format")

// Config holds the logging settings a service exposes as flags.
type Config struct {
	// Level is a zerolog level name: trace, debug, info, warn, error, fatal, panic or disabled.
	Level string
	// Format is FormatJSON or FormatConsole.
	Format string
}

// RegisterFlags defines -log-level and -log-format on fs. The defaults are the receiver's current
// values, or info and json where those are empty.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	if c.Level == "" {
		c.Level = zerolog.LevelInfoValue
	}
	if c.Format == "" {
		c.Format = FormatJSON
	}
	fs.StringVar(&c.Level, "log-level", c.Level, "log level: trace, debug, info, warn, error or disabled")
	fs.StringVar(&c.Format, "log-format", c.Format, "log format: json (one object per line) or console (for people)")
}

// Logger builds the logger for service from c, writing to standard error.
func (c Config) Logger(service string) (zerolog.Logger, error) {
	return New(service, c.Level, c.Format)
}

// New returns a logger for service writing to standard error. An empty level means info and an
// empty format means json.
func New(service, level, format string) (zerolog.Logger, error) {
	return NewTo(os.Stderr, service, level, format)
}

// NewTo is New writing to w.
func NewTo(w io.Writer, service, level, format string) (zerolog.Logger, error) {
	lvl := zerolog.InfoLevel
	if level != "" {
		var err error
		lvl, err = zerolog.ParseLevel(level)
		// ParseLevel accepts integers as levels and maps "" to NoLevel; neither is a name a
		// person would write in a manifest.
		if err != nil || lvl == zerolog.NoLevel || lvl.String() != level {
			return zerolog.Nop(), fmt.Errorf("%w: %q (want trace, debug, info, warn, error, fatal, panic or disabled)", ErrInvalidLevel, level)
		}
	}
	switch format {
	case "", FormatJSON:
	case FormatConsole:
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339Nano}
	default:
		return zerolog.Nop(), fmt.Errorf("%w: %q (want json or console)", ErrInvalidFormat, format)
	}
	// A hook rather than zerolog's Timestamp(): the format and zone come from zerolog's package
	// globals, which a library should not change under its callers.
	return zerolog.New(w).Level(lvl).Hook(utcTimestamp{}).With().Str("service", service).Logger(), nil
}

type utcTimestamp struct{}

func (utcTimestamp) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str(zerolog.TimestampFieldName, time.Now().UTC().Format(time.RFC3339Nano))
}
