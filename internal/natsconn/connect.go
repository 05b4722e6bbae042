package natsconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/cim-infra/registry/internal/retry"
)

// Connect opens a connection described by cfg. While no server can be reached (refused, DNS,
// dial timeout) it keeps trying every cfg.ReconnectWait until ctx is done, so that a service may
// start before NATS does; a bound on that wait is the caller's context deadline, or
// cfg.ConnectAttempts, after which it returns an *UnreachableError. A refusal by a server
// (authentication, TLS) is returned at once, since retrying cannot fix it.
//
// Once connected, the connection reconnects by itself as cfg says (by default forever) and logs
// disconnections, reconnections, asynchronous errors, lame-duck notices and its closing as
// zerolog events with component "nats".
func Connect(ctx context.Context, cfg Config, log zerolog.Logger) (*nats.Conn, error) {
	opts, err := cfg.Options()
	if err != nil {
		return nil, err
	}
	log = log.With().Str("component", "nats").Logger()
	opts = append(opts, handlers(log)...)
	target := redact(cfg.URLOrDefault())
	if cfg.InProcess != nil {
		target = "the in-process server"
	}
	wait := cfg.ReconnectWait
	if wait <= 0 {
		wait = DefaultReconnectWait
	}
	// An unreachable server is retried, every ReconnectWait, at most ConnectAttempts times (0: until
	// ctx ends); any other error ends at once. Not retry.Do: each way of giving up has an error of
	// its own (refused credentials, other errors, attempts spent, ctx ended with the last error).
	pause := retry.Backoff{Next: wait, Max: wait}
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("natsconn: connect to %s: %w", target, err)
		}
		nc, err := nats.Connect(cfg.URLOrDefault(), opts...)
		if err == nil {
			ev := log.Info()
			if cfg.InProcess != nil {
				ev = ev.Bool("in_process", true)
			} else {
				ev = ev.Str("url", nc.ConnectedUrlRedacted())
			}
			ev.Str("server_id", nc.ConnectedServerId()).Str("server_name", nc.ConnectedServerName()).
				Int("attempt", attempt).Msg("nats connected")
			return nc, nil
		}
		if errors.Is(err, nats.ErrAuthorization) {
			return nil, fmt.Errorf("natsconn: connect to %s: the server refused the credentials (%s): %w", target, cfg.authMethod(), err)
		}
		if !unreachable(err) {
			return nil, fmt.Errorf("natsconn: connect to %s: %w", target, err)
		}
		if cfg.ConnectAttempts > 0 && attempt >= cfg.ConnectAttempts {
			return nil, &UnreachableError{Target: target, Attempts: attempt, Err: err}
		}
		log.Warn().Err(err).Str("url", target).Int("attempt", attempt).Dur("retry_in", wait).Msg("nats unreachable, retrying")
		if !pause.Wait(ctx) {
			return nil, fmt.Errorf("natsconn: connect to %s: %w (last error: %v)", target, ctx.Err(), err)
		}
	}
}

// UnreachableError is Connect giving up after Config.ConnectAttempts attempts, none of which
// reached a server.
type UnreachableError struct {
	Target   string // the URLs tried, passwords and tokens hidden
	Attempts int
	Err      error // the last attempt's error
}

func (e *UnreachableError) Error() string {
	attempts := "1 attempt"
	if e.Attempts != 1 {
		attempts = fmt.Sprintf("%d attempts", e.Attempts)
	}
	return fmt.Sprintf("natsconn: connect to %s: no server reached in %s: %v", e.Target, attempts, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// authMethod names the authentication method c uses, for error messages.
func (c Config) authMethod() string {
	switch {
	case c.CredsFile != "":
		return "creds file " + flagRef(FlagCreds)
	case c.NKeySeedFile != "":
		return "nkey " + flagRef(FlagNKey)
	case c.User != "":
		return "user " + c.User + " and password " + flagRef(FlagPassword)
	case c.Token != "":
		return "token " + flagRef(FlagToken)
	default:
		return "none given; see -" + FlagCreds + ", -" + FlagNKey + ", -" + FlagUser + ", -" + FlagToken
	}
}

// unreachable reports whether err means that no server answered, as opposed to a server that
// answered and refused.
func unreachable(err error) bool {
	if errors.Is(err, nats.ErrNoServers) {
		return true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr)
}

func handlers(log zerolog.Logger) []nats.Option {
	return []nats.Option{
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err == nil { // a deliberate Close or Drain
				log.Info().Str("url", nc.ConnectedUrlRedacted()).Msg("nats disconnected")
				return
			}
			log.Warn().Err(err).Str("url", nc.ConnectedUrlRedacted()).Msg("nats disconnected")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info().Str("url", nc.ConnectedUrlRedacted()).Str("server_id", nc.ConnectedServerId()).
				Uint64("reconnects", nc.Stats().Reconnects).Msg("nats reconnected")
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn().Err(err).Msg("nats reconnect attempt failed")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			ev := log.Error().Err(err)
			if sub != nil {
				ev = ev.Str("subject", sub.Subject)
			}
			ev.Msg("nats asynchronous error")
		}),
		nats.LameDuckModeHandler(func(nc *nats.Conn) {
			log.Warn().Str("url", nc.ConnectedUrlRedacted()).Msg("nats server entering lame duck mode")
		}),
		nats.DiscoveredServersHandler(func(nc *nats.Conn) {
			log.Debug().Strs("servers", nc.DiscoveredServers()).Msg("nats servers discovered")
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			ev := log.Info()
			if err := nc.LastError(); err != nil {
				ev = log.Error().Err(err)
			}
			ev.Msg("nats connection closed")
		}),
	}
}

// redact hides passwords and tokens in a comma-separated list of URLs, for logs and errors.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		u, err := url.Parse(p)
		if err != nil {
			parts[i] = "(unparsable URL)" // it may hold a password
			continue
		}
		if u.User == nil {
			parts[i] = p
			continue
		}
		if _, hasPassword := u.User.Password(); !hasPassword {
			u.User = url.User("xxxxx") // a lone user part is a token
		}
		parts[i] = u.Redacted()
	}
	return strings.Join(parts, ",")
}
