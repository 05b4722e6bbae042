package jetstore

import (
	"fmt"
	"strings"
	"time"
)

// Defaults for Config fields left zero.
const (
	DefaultStream        = "CIM_EVENTS"
	DefaultSubjectPrefix = "cim.evt"
	DefaultReplicas      = 1
	DefaultDuplicates    = 2 * time.Minute
	// MaxBatch is the server's limit of messages in one atomic batch (ADR-50).
	MaxBatch = 1000
)

// Config describes the event stream. The zero value means the defaults.
type Config struct {
	// Stream is the stream's name (default DefaultStream).
	Stream string
	// SubjectPrefix is the subject prefix of every aggregate (default DefaultSubjectPrefix); the
	// stream captures <prefix>.>.
	SubjectPrefix string
	// Replicas is the stream's replica count, 1, 3 or 5 (default 1).
	Replicas int
	// Duplicates is the stream's de-duplication window for Nats-Msg-Id (default 2 minutes).
	Duplicates time.Duration
	// MaxEventsPerAppend caps the events of one Append (default and maximum MaxBatch).
	MaxEventsPerAppend int
	// KeyPrefix is the subject prefix of unique keys (Claim, Release, Key), outside
	// SubjectPrefix; the stream then captures <KeyPrefix>.> too. Empty (the default): keys are
	// disabled. DefaultKeyPrefix is the registry's.
	KeyPrefix string
}

// DefaultKeyPrefix is the registry's Config.KeyPrefix.
const DefaultKeyPrefix = "cim.key"

// withDefaults returns c with zero fields set to their defaults, or an error wrapping
// ErrInvalidConfig.
func (c Config) withDefaults() (Config, error) {
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = DefaultSubjectPrefix
	}
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
	if c.Duplicates == 0 {
		c.Duplicates = DefaultDuplicates
	}
	if c.MaxEventsPerAppend == 0 {
		c.MaxEventsPerAppend = MaxBatch
	}
	if strings.ContainsAny(c.Stream, ".*> \t\r\n/\\") {
		return c, fmt.Errorf("%w: stream name %q contains '.', '*', '>', '/', '\\' or white space", ErrInvalidConfig, c.Stream)
	}
	for _, tok := range strings.Split(c.SubjectPrefix, ".") {
		if err := validateToken(tok); err != nil {
			return c, fmt.Errorf("%w: subject prefix %q: token %q: %s", ErrInvalidConfig, c.SubjectPrefix, tok, err)
		}
	}
	if c.KeyPrefix != "" {
		for _, tok := range strings.Split(c.KeyPrefix, ".") {
			if err := validateToken(tok); err != nil {
				return c, fmt.Errorf("%w: key prefix %q: token %q: %s", ErrInvalidConfig, c.KeyPrefix, tok, err)
			}
		}
		if within(c.KeyPrefix, c.SubjectPrefix) || within(c.SubjectPrefix, c.KeyPrefix) {
			return c, fmt.Errorf("%w: key prefix %q and subject prefix %q overlap", ErrInvalidConfig, c.KeyPrefix, c.SubjectPrefix)
		}
	}
	switch {
	case c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5:
		return c, fmt.Errorf("%w: replicas %d, want 1, 3 or 5", ErrInvalidConfig, c.Replicas)
	case c.Duplicates < 0:
		return c, fmt.Errorf("%w: duplicates window %s is negative", ErrInvalidConfig, c.Duplicates)
	case c.MaxEventsPerAppend < 0 || c.MaxEventsPerAppend > MaxBatch:
		return c, fmt.Errorf("%w: max events per append %d, want 1 to %d", ErrInvalidConfig, c.MaxEventsPerAppend, MaxBatch)
	}
	return c, nil
}

// within reports whether the subjects under prefix a are among those under prefix b.
func within(a, b string) bool { return a == b || strings.HasPrefix(a, b+".") }
