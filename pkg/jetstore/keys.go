package jetstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Unique keys (a hostname, an asset tag) are claimed and released in the same atomic batch as
// the events that take or give them up. Each key has a subject of its own,
// <key prefix>.<space>.<key, base64url>, outside the events' prefix, whose messages are its
// claim history; each claim or release carries Nats-Expected-Last-Subject-Sequence for the
// key's subject, so the server refuses the whole batch when the key changed meanwhile. The
// server is the referee: there is no separate reservation to drift from the events.

// Headers of a key message (with Nats-Msg-Id, HeaderAggregateType and HeaderAggregateID, the
// holder, and the expectation of the key's subject). Key messages have no data.
const (
	// HeaderKeySpace carries the key's space, e.g. "hostname".
	HeaderKeySpace = "Cim-Key-Space"
	// HeaderKey carries the key as given, e.g. "web-01.example.com".
	HeaderKey = "Cim-Key"
	// HeaderKeyOp is KeyOpClaim or KeyOpRelease.
	HeaderKeyOp = "Cim-Key-Op"
)

// Values of HeaderKeyOp.
const (
	KeyOpClaim   = "claim"
	KeyOpRelease = "release"
)

// MaxKeyLength bounds the length in bytes of a key.
const MaxKeyLength = 256

// maxKeyAttempts bounds the sends of one Append whose key changed meanwhile but is still
// claimable (released again, say).
const maxKeyAttempts = 3

var (
	// ErrKeyTaken reports that a key an Append claims is held by another aggregate. The error is
	// a *KeyTakenError; nothing was written.
	ErrKeyTaken = errors.New("jetstore: key taken")

	// ErrInvalidKey reports a key space or key that cannot be claimed (see Claim), or the same
	// key twice in one Append.
	ErrInvalidKey = errors.New("jetstore: invalid key")

	// ErrKeysDisabled reports a claim or release on a store whose Config has no KeyPrefix.
	ErrKeysDisabled = errors.New("jetstore: keys disabled (Config.KeyPrefix is empty)")
)

// KeyTakenError is returned by Append when a key it claims is held by another aggregate.
// errors.Is(err, ErrKeyTaken) is true.
type KeyTakenError struct {
	// Aggregate is the aggregate that was appended to.
	Aggregate AggregateRef
	// Space and Key name the key.
	Space, Key string
	// Holder is the aggregate that holds the key, Sequence the stream sequence of its claim.
	Holder   AggregateRef
	Sequence uint64
	// Err is the server's error when the server refused the append (the key was claimed
	// between Append's read of it and the write), nil when Append refused it before writing.
	Err error
}

// Error implements error.
func (e *KeyTakenError) Error() string {
	return fmt.Sprintf("jetstore: append to %s: %s %q is held by %s (sequence %d)", e.Aggregate, e.Space, e.Key, e.Holder, e.Sequence)
}

// Is makes errors.Is(err, ErrKeyTaken) true.
func (e *KeyTakenError) Is(target error) bool { return target == ErrKeyTaken }

// Unwrap returns the server's error.
func (e *KeyTakenError) Unwrap() error { return e.Err }

// AppendOption adds to an Append.
type AppendOption func(*appendOptions) error

type appendOptions struct{ keys []keyChange }

type keyChange struct {
	space, key string
	release    bool
}

// Claim makes the append claim the key in space for the aggregate, atomically with its events:
// if another aggregate holds it, Append fails with a *KeyTakenError and writes nothing. A key the
// aggregate already holds is left as it is. The space is one subject token (as an aggregate
// type); the key any UTF-8 string of 1 to MaxKeyLength bytes without control characters,
// compared byte for byte (normalise it first, e.g. lower-case a hostname).
func Claim(space, key string) AppendOption { return keyOption(space, key, false) }

// Release makes the append release the key in space, atomically with its events, if the
// aggregate holds it; a key the aggregate does not hold is left as it is.
func Release(space, key string) AppendOption { return keyOption(space, key, true) }

func keyOption(space, key string, release bool) AppendOption {
	return func(o *appendOptions) error {
		if err := validateKey(space, key); err != nil {
			return err
		}
		for _, k := range o.keys {
			if k.space == space && k.key == key {
				return fmt.Errorf("%w: %s %q twice in one append", ErrInvalidKey, space, key)
			}
		}
		o.keys = append(o.keys, keyChange{space: space, key: key, release: release})
		return nil
	}
}

func validateKey(space, key string) error {
	if err := validateToken(space); err != nil {
		return fmt.Errorf("%w: space %q: %s", ErrInvalidKey, space, err)
	}
	switch {
	case key == "":
		return fmt.Errorf("%w: %s: empty key", ErrInvalidKey, space)
	case len(key) > MaxKeyLength:
		return fmt.Errorf("%w: %s: key %.32q... longer than %d bytes", ErrInvalidKey, space, key, MaxKeyLength)
	case !utf8.ValidString(key) || strings.IndexFunc(key, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: %s: key %q is not UTF-8 or contains control characters", ErrInvalidKey, space, key)
	}
	return nil
}

// KeySubject returns the subject of a key's claims and releases,
// <key prefix>.<space>.<key in unpadded base64url>: any key is one subject token, and the
// encoding is reversible.
func (s *Store) KeySubject(space, key string) (string, error) {
	if s.cfg.KeyPrefix == "" {
		return "", ErrKeysDisabled
	}
	if err := validateKey(space, key); err != nil {
		return "", err
	}
	return s.keySubject(space, key), nil
}

func (s *Store) keySubject(space, key string) string {
	return s.cfg.KeyPrefix + "." + space + "." + base64.RawURLEncoding.EncodeToString([]byte(key))
}

// KeyHolder says who holds a key.
type KeyHolder struct {
	// Held is true when an aggregate holds the key.
	Held bool
	// Aggregate is the holder, zero when the key is free.
	Aggregate AggregateRef
	// Sequence is the stream sequence of the key's last claim or release, 0 when it never had
	// one.
	Sequence uint64
}

// Key says who holds the key in space now, with one request (on a replicated stream through
// the leader, so that an acknowledged claim or release is seen).
func (s *Store) Key(ctx context.Context, space, key string) (KeyHolder, error) {
	subject, err := s.KeySubject(space, key)
	if err != nil {
		return KeyHolder{}, err
	}
	var m *jetstream.RawStreamMsg
	if s.cfg.Replicas == 1 || s.staleReads {
		m, err = s.directLast(ctx, subject)
	} else {
		m, err = s.leaderGet(ctx, msgGetRequest{LastFor: subject})
	}
	h, err := keyHolder(m, err)
	if err != nil {
		return KeyHolder{}, fmt.Errorf("jetstore: key %s %q: %w", space, key, classify(err))
	}
	return h, nil
}

// keyHolder reads the holder from a key's last message (or the error of reading it).
func keyHolder(m *jetstream.RawStreamMsg, err error) (KeyHolder, error) {
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return KeyHolder{}, nil
	}
	if err != nil {
		return KeyHolder{}, err
	}
	h := KeyHolder{Sequence: m.Sequence}
	switch op := m.Header.Get(HeaderKeyOp); op {
	case KeyOpRelease:
	case KeyOpClaim:
		h.Held, h.Aggregate = true, storedOn(m)
	default:
		return KeyHolder{}, fmt.Errorf("%w: key message %d on %s: %s %q", ErrCorruptEvent, m.Sequence, m.Subject, HeaderKeyOp, op)
	}
	return h, nil
}

// keyMessage is a claim or release an append sends.
type keyMessage struct {
	keyChange
	subject  string
	expected uint64
}

// planKeys reads each key from the stream leader and returns the claims and releases to send,
// each expecting the key's subject as read: claims of keys the aggregate does not hold yet,
// releases of keys it holds. A key held by another aggregate is a *KeyTakenError if the
// aggregate is at the expected sequence, and a *ConcurrencyError otherwise: the caller decided
// on a state that is no longer the aggregate's, and deciding again may claim no key at all
// (a resource decommissioned meanwhile is refused for that, not for the key).
func (s *Store) planKeys(ctx context.Context, w *write, expected uint64, keys []keyChange) ([]keyMessage, error) {
	var msgs []keyMessage
	for _, k := range keys {
		subject := s.keySubject(k.space, k.key)
		h, err := keyHolder(s.leaderGet(ctx, msgGetRequest{LastFor: subject}))
		if err != nil {
			return nil, fmt.Errorf("jetstore: append to %s: reading key %s %q: %w", w.agg, k.space, k.key, classify(err))
		}
		ours := h.Held && h.Aggregate == w.agg
		switch {
		case !k.release && h.Held && !ours:
			// The aggregate is read after the key: if it is still at expected, it was when
			// the key was read, so both held at once.
			if err := s.atExpected(ctx, w, expected); err != nil {
				return nil, err
			}
			return nil, &KeyTakenError{Aggregate: w.agg, Space: k.space, Key: k.key, Holder: h.Aggregate, Sequence: h.Sequence}
		case k.release == ours: // a claim of a free key, a release of ours
			msgs = append(msgs, keyMessage{keyChange: k, subject: subject, expected: h.Sequence})
		}
	}
	return msgs, nil
}

// atExpected reads the aggregate's last sequence from the stream leader: nil when it is
// expected, a *ConcurrencyError with the actual sequence when it is not.
func (s *Store) atExpected(ctx context.Context, w *write, expected uint64) error {
	last, err := s.leaderGet(ctx, msgGetRequest{LastFor: w.subject})
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		if expected == 0 {
			return nil
		}
		return &ConcurrencyError{Aggregate: w.agg, Expected: expected}
	case err != nil:
		return fmt.Errorf("jetstore: append to %s: reading its last sequence: %w", w.agg, classify(err))
	case last.Sequence != expected:
		return &ConcurrencyError{Aggregate: w.agg, Expected: expected, Actual: last.Sequence}
	}
	return nil
}

// keyConflict tells, after the server refused an append whose aggregate was at the expected
// sequence (cerr), which expectation failed, by reading the aggregate and every key again
// through the leader: the aggregate moved on is cerr with the actual sequence; a claimed key now
// held by another aggregate is a *KeyTakenError; a key changed but still as the append wants it
// possible (released again, say) means retry: plan and send again. A replicated stream refuses
// with 10164 while another write to a subject is in flight and not yet applied: until one of
// them shows a change, the reads are repeated (1 ms, doubling to 32 ms, within ctx's deadline
// or the JetStream default timeout); nothing seen by then is cerr.
func (s *Store) keyConflict(ctx context.Context, w *write, expected uint64, sent []keyMessage, cerr *ConcurrencyError) (retry bool, err error) {
	var wait replicaWait
	for {
		last, err := s.leaderGet(ctx, msgGetRequest{LastFor: w.subject})
		if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return false, s.unresolved(w, cerr.Err.Error(), err)
		}
		if err == nil && last.Sequence != expected {
			cerr.Actual = last.Sequence
			return false, cerr
		}
		for _, k := range sent {
			h, err := keyHolder(s.leaderGet(ctx, msgGetRequest{LastFor: k.subject}))
			if err != nil {
				return false, s.unresolved(w, cerr.Err.Error(), err)
			}
			if h.Sequence == k.expected {
				continue
			}
			if !k.release && h.Held && h.Aggregate != w.agg {
				return false, &KeyTakenError{Aggregate: w.agg, Space: k.space, Key: k.key, Holder: h.Aggregate, Sequence: h.Sequence, Err: cerr.Err}
			}
			retry = true
		}
		if retry {
			return true, nil
		}
		if err := wait.wait(ctx, s.js.Options().DefaultTimeout); err != nil {
			return false, cerr
		}
	}
}

// keyMsgID is the Nats-Msg-Id of the write's i-th key message: derived from its first event's
// id, so that a retried write sends the same ids.
func (w *write) keyMsgID(i int) string { return w.events[0].ID + "/k" + strconv.Itoa(i) }

// message encodes the key change as a message of the write w, its i-th key message.
func (k *keyMessage) message(w *write, i int) *nats.Msg {
	op := KeyOpClaim
	if k.release {
		op = KeyOpRelease
	}
	return &nats.Msg{Subject: k.subject, Header: nats.Header{
		HeaderEventID:                       {w.keyMsgID(i)},
		HeaderKeySpace:                      {k.space},
		HeaderKey:                           {k.key},
		HeaderKeyOp:                         {op},
		HeaderAggregateType:                 {w.agg.Type},
		HeaderAggregateID:                   {w.agg.ID},
		jetstream.ExpectedLastSubjSeqHeader: {strconv.FormatUint(k.expected, 10)},
	}}
}
