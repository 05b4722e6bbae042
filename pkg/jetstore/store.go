package jetstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Store appends and loads the events of any aggregate in one JetStream stream. It is safe for
// concurrent use. It creates no consumer and leaves no subscription behind after any call.
type Store struct {
	js         jetstream.JetStream
	cfg        Config
	upcasters  *Upcasters
	pageSize   int
	staleReads bool
}

// New returns a Store on js. It does not talk to the server; call EnsureStream once at start-up.
func New(js jetstream.JetStream, cfg Config, opts ...Option) (*Store, error) {
	if js == nil {
		return nil, fmt.Errorf("%w: nil JetStream", ErrInvalidConfig)
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	o := storeOptions{pageSize: DefaultPageSize}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	reg, err := NewUpcasters(o.upcasters...)
	if err != nil {
		return nil, err
	}
	return &Store{js: js, cfg: cfg, upcasters: reg, pageSize: o.pageSize, staleReads: o.staleReads}, nil
}

// Config returns the store's configuration with defaults filled in.
func (s *Store) Config() Config { return s.cfg }

// Subject returns the aggregate's subject, <prefix>.<type>.<id>, or an error wrapping
// ErrInvalidAggregate.
func (s *Store) Subject(agg AggregateRef) (string, error) {
	if err := agg.Validate(); err != nil {
		return "", err
	}
	return agg.subject(s.cfg.SubjectPrefix), nil
}

// StreamConfig returns the stream configuration EnsureStream creates.
func (s *Store) StreamConfig() jetstream.StreamConfig {
	subjects := []string{s.cfg.SubjectPrefix + ".>"}
	if s.cfg.KeyPrefix != "" {
		subjects = append(subjects, s.cfg.KeyPrefix+".>")
	}
	return jetstream.StreamConfig{
		Name:               s.cfg.Stream,
		Description:        "Event store: one subject per aggregate, <prefix>.<type>.<id>",
		Subjects:           subjects,
		Retention:          jetstream.LimitsPolicy,
		Storage:            jetstream.FileStorage,
		Replicas:           s.cfg.Replicas,
		Duplicates:         s.cfg.Duplicates,
		AllowDirect:        true,
		AllowAtomicPublish: true,
		DenyDelete:         true,
		DenyPurge:          true,
		Discard:            jetstream.DiscardNew,
		MaxMsgs:            -1,
		MaxBytes:           -1,
		MaxMsgsPerSubject:  -1,
		MaxMsgSize:         -1,
		MaxConsumers:       -1,
	}
}

// EnsureStream creates the stream if it does not exist, and otherwise verifies that the existing
// one is safe to use. It never changes an existing stream: a dangerous or incompatible setting is
// reported as an *IncompatibleStreamError (errors.Is(err, ErrIncompatibleStream)) naming every
// offending setting.
func (s *Store) EnsureStream(ctx context.Context) error {
	info := func(ctx context.Context) (jetstream.Stream, error) { return s.js.Stream(ctx, s.cfg.Stream) }
	stream, err := UntilAnswered(ctx, info)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		stream, err = UntilAnswered(ctx, func(ctx context.Context) (jetstream.Stream, error) {
			return s.js.CreateStream(ctx, s.StreamConfig())
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Created meanwhile by another instance, perhaps differently: verify it.
			stream, err = UntilAnswered(ctx, info)
		}
	}
	if err != nil {
		return fmt.Errorf("jetstore: ensure stream %s: %w", s.cfg.Stream, classify(err))
	}
	return s.verify(stream.CachedInfo().Config)
}

// verify lists every setting of got that would make the store unsafe or unusable.
func (s *Store) verify(got jetstream.StreamConfig) error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if got.Storage != jetstream.FileStorage {
		add("storage is %s, want file", strings.ToLower(got.Storage.String()))
	}
	if got.PersistMode == jetstream.AsyncPersistMode {
		add("persist mode is async (acknowledged writes can be lost), want default")
	}
	if !got.AllowAtomicPublish {
		add("allow_atomic is false, want true (multi-event appends need atomic batches)")
	}
	if !got.AllowDirect {
		add("allow_direct is false, want true (loads use direct get)")
	}
	if !got.DenyDelete {
		add("deny_delete is false, want true")
	}
	if !got.DenyPurge {
		add("deny_purge is false, want true")
	}
	if got.AllowRollup {
		add("allow_rollup_hdrs is true (a message could purge an aggregate), want false")
	}
	if got.Sealed {
		add("stream is sealed (no appends possible)")
	}
	if got.Mirror != nil {
		add("stream is a mirror (no appends possible)")
	}
	if got.Retention != jetstream.LimitsPolicy {
		add("retention is %s (events would be removed once consumed), want limits", got.Retention)
	}
	if got.MaxAge > 0 {
		add("max_age is %s (old events would expire), want unlimited", got.MaxAge)
	}
	if got.MaxMsgs > 0 {
		add("max_msgs is %d (events would be dropped), want unlimited", got.MaxMsgs)
	}
	if got.MaxBytes > 0 {
		add("max_bytes is %d (events would be dropped), want unlimited", got.MaxBytes)
	}
	if got.MaxMsgsPerSubject > 0 {
		add("max_msgs_per_subject is %d (an aggregate's events would be dropped), want unlimited", got.MaxMsgsPerSubject)
	}
	if got.Replicas != s.cfg.Replicas {
		add("replicas is %d, want %d", got.Replicas, s.cfg.Replicas)
	}
	if got.Duplicates < s.cfg.Duplicates {
		add("duplicates window is %s, want at least %s", got.Duplicates, s.cfg.Duplicates)
	}
	if !coversPrefix(got.Subjects, s.cfg.SubjectPrefix) {
		add("subjects %v do not cover %s.>", got.Subjects, s.cfg.SubjectPrefix)
	}
	if s.cfg.KeyPrefix != "" && !coversPrefix(got.Subjects, s.cfg.KeyPrefix) {
		add("subjects %v do not cover %s.> (key claims; add it to the stream's subjects)", got.Subjects, s.cfg.KeyPrefix)
	}
	if len(problems) > 0 {
		return &IncompatibleStreamError{Stream: got.Name, Problems: problems}
	}
	return nil
}

// coversPrefix reports whether one of subjects matches every subject under prefix.
func coversPrefix(subjects []string, prefix string) bool {
	for _, sub := range subjects {
		if sub == ">" || sub == prefix+".>" {
			return true
		}
		// A wider wildcard such as "a.>" for prefix "a.b" also covers it.
		for i := len(prefix) - 1; i > 0; i-- {
			if prefix[i] == '.' && sub == prefix[:i]+".>" {
				return true
			}
		}
	}
	return false
}

// LastSequence returns the stream sequence of the last event of any aggregate (0 when there is
// none), read through the stream leader: the head that a read model has caught up with once it
// has applied it. Key messages (see Claim) are not events and never count, so a read model that
// applies every event reaches the head even when the stream's last message is a key's.
func (s *Store) LastSequence(ctx context.Context) (uint64, error) {
	ctx, cancel := s.withDefaultTimeout(ctx)
	defer cancel()
	m, err := s.leaderGet(ctx, msgGetRequest{LastFor: s.cfg.SubjectPrefix + ".>"})
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("jetstore: last event of stream %s: %w", s.cfg.Stream, classify(err))
	}
	return m.Sequence, nil
}

// AttemptTimeout bounds one attempt of UntilAnswered.
const AttemptTimeout = 2 * time.Second

// UntilAnswered calls f with a deadline of AttemptTimeout per attempt, and calls it again while
// the attempt timed out and ctx still has time. A replicated stream or bucket that is being
// created (by this process or another one starting at the same moment) has no leader yet, and
// the server leaves requests about it unanswered until it has one: without a short attempt,
// the first such request would use up the caller's whole deadline. Any other error, and the
// first success, end the calls.
func UntilAnswered[T any](ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	for {
		actx, cancel := context.WithTimeout(ctx, AttemptTimeout)
		v, err := f(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)) {
			return v, err
		}
	}
}
