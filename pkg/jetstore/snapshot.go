package jetstore

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultSnapshotBucket is the key-value bucket snapshots are kept in unless WithSnapshotBucket
// says otherwise.
const DefaultSnapshotBucket = "CIM_SNAPSHOTS"

// ErrNoSnapshot is returned by SnapshotStore.Get when the aggregate has no snapshot.
var ErrNoSnapshot = errors.New("jetstore: no snapshot")

// Snapshot is an aggregate's folded state as of a stream sequence. The store keeps the bytes; the
// caller encodes and folds.
type Snapshot struct {
	// State is the encoded state.
	State []byte
	// Sequence is the stream sequence of the last event folded into State.
	Sequence uint64
	// SchemaVersion is the version of State's encoding; a snapshot of another version than the
	// caller's is ignored by LoadWithSnapshot.
	SchemaVersion int
}

// SnapshotPolicy tells, from the number of events folded since the last snapshot, whether a new
// one is due.
type SnapshotPolicy func(eventsSinceSnapshot int) bool

// SnapshotEvery is due once n or more events have been folded since the last snapshot.
func SnapshotEvery(n int) SnapshotPolicy {
	return func(since int) bool { return n > 0 && since >= n }
}

// SnapshotOption configures a SnapshotStore.
type SnapshotOption func(*snapshotOptions) error

type snapshotOptions struct {
	bucket   string
	replicas int
	policy   SnapshotPolicy
}

// WithSnapshotBucket names the key-value bucket (default DefaultSnapshotBucket).
func WithSnapshotBucket(name string) SnapshotOption {
	return func(o *snapshotOptions) error {
		if name == "" {
			return fmt.Errorf("%w: empty snapshot bucket name", ErrInvalidOption)
		}
		o.bucket = name
		return nil
	}
}

// WithSnapshotReplicas sets the bucket's replica count (default 1).
func WithSnapshotReplicas(n int) SnapshotOption {
	return func(o *snapshotOptions) error {
		if n != 1 && n != 3 && n != 5 {
			return fmt.Errorf("%w: snapshot replicas %d, want 1, 3 or 5", ErrInvalidOption, n)
		}
		o.replicas = n
		return nil
	}
}

// WithSnapshotPolicy sets when SnapshotStore.Due says a snapshot is due (default
// SnapshotEvery(100)).
func WithSnapshotPolicy(p SnapshotPolicy) SnapshotOption {
	return func(o *snapshotOptions) error {
		if p == nil {
			return fmt.Errorf("%w: nil snapshot policy", ErrInvalidOption)
		}
		o.policy = p
		return nil
	}
}

// SnapshotStore keeps one snapshot per aggregate in a JetStream key-value bucket (history 1, file
// storage). Snapshots are an optimisation: losing them costs a full load, never correctness.
type SnapshotStore struct {
	kv     jetstream.KeyValue
	policy SnapshotPolicy
}

// NewSnapshotStore creates the bucket if it does not exist (idempotent) and returns the store.
func NewSnapshotStore(ctx context.Context, js jetstream.JetStream, opts ...SnapshotOption) (*SnapshotStore, error) {
	o := snapshotOptions{bucket: DefaultSnapshotBucket, replicas: 1, policy: SnapshotEvery(100)}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      o.bucket,
		Description: "Aggregate snapshots of the event store",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    o.replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("jetstore: snapshot bucket %s: %w", o.bucket, classify(err))
	}
	return &SnapshotStore{kv: kv, policy: o.policy}, nil
}

// OpenSnapshotStore returns a SnapshotStore on an existing key-value bucket, for callers that
// create or look up the bucket themselves (for example under NATS permissions that allow
// creating a stream but not updating one, which NewSnapshotStore's create-or-update needs).
// The bucket should keep one revision per key (History 1). WithSnapshotBucket and
// WithSnapshotReplicas do not apply.
func OpenSnapshotStore(kv jetstream.KeyValue, opts ...SnapshotOption) (*SnapshotStore, error) {
	if kv == nil {
		return nil, fmt.Errorf("%w: nil key-value bucket", ErrInvalidOption)
	}
	o := snapshotOptions{policy: SnapshotEvery(100)}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	return &SnapshotStore{kv: kv, policy: o.policy}, nil
}

// Due reports whether a snapshot should be written after eventsSinceSnapshot events have been
// folded onto the last one (or onto nothing).
func (ss *SnapshotStore) Due(eventsSinceSnapshot int) bool { return ss.policy(eventsSinceSnapshot) }

// Get returns the aggregate's snapshot, or ErrNoSnapshot.
func (ss *SnapshotStore) Get(ctx context.Context, agg AggregateRef) (Snapshot, error) {
	if err := agg.Validate(); err != nil {
		return Snapshot{}, err
	}
	entry, err := ss.kv.Get(ctx, snapshotKey(agg))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Snapshot{}, fmt.Errorf("%w: %s", ErrNoSnapshot, agg)
	}
	if err != nil {
		return Snapshot{}, fmt.Errorf("jetstore: get snapshot of %s: %w", agg, classify(err))
	}
	snap, err := decodeSnapshot(entry.Value())
	if err != nil {
		return Snapshot{}, fmt.Errorf("jetstore: snapshot of %s: %w", agg, err)
	}
	return snap, nil
}

// Put stores the aggregate's snapshot, replacing the previous one.
func (ss *SnapshotStore) Put(ctx context.Context, agg AggregateRef, snap Snapshot) error {
	if err := agg.Validate(); err != nil {
		return err
	}
	if snap.Sequence == 0 || snap.SchemaVersion < 1 {
		return fmt.Errorf("%w: snapshot of %s at sequence %d, schema version %d: want both 1 or more", ErrInvalidOption, agg, snap.Sequence, snap.SchemaVersion)
	}
	if _, err := ss.kv.Put(ctx, snapshotKey(agg), encodeSnapshot(snap)); err != nil {
		return fmt.Errorf("jetstore: put snapshot of %s: %w", agg, classify(err))
	}
	return nil
}

// SnapshotLoad is the result of LoadWithSnapshot.
type SnapshotLoad struct {
	// Snapshot is the usable snapshot, nil when there is none or it has another schema version.
	Snapshot *Snapshot
	// Loaded holds the events after the snapshot (all events without one) and the sequence the
	// folded state stands for. len(Events) is the count to give SnapshotStore.Due.
	Loaded
}

// LoadWithSnapshot loads the aggregate from its snapshot, if it has one of schemaVersion, plus the
// events after it; otherwise all its events. The caller folds Events onto Snapshot.State (or onto
// the initial state).
func (s *Store) LoadWithSnapshot(ctx context.Context, agg AggregateRef, snaps *SnapshotStore, schemaVersion int) (SnapshotLoad, error) {
	var res SnapshotLoad
	snap, err := snaps.Get(ctx, agg)
	switch {
	case err == nil && snap.SchemaVersion == schemaVersion:
		res.Snapshot = &snap
	case err != nil && !errors.Is(err, ErrNoSnapshot):
		return SnapshotLoad{}, err
	}
	var opts []LoadOption
	if res.Snapshot != nil {
		opts = append(opts, After(snap.Sequence))
	}
	if res.Loaded, err = s.Load(ctx, agg, opts...); err != nil {
		return SnapshotLoad{}, err
	}
	return res, nil
}

// snapshotKey maps an aggregate to a key. Tokens made only of the characters keys allow are used
// as they are ("type.id"); otherwise both are base64url-encoded under a third token
// ("_b64.type.id"), which cannot collide with the two-token form.
func snapshotKey(agg AggregateRef) string {
	if keySafe(agg.Type) && keySafe(agg.ID) {
		return agg.Type + "." + agg.ID
	}
	enc := base64.RawURLEncoding
	return "_b64." + enc.EncodeToString([]byte(agg.Type)) + "." + enc.EncodeToString([]byte(agg.ID))
}

func keySafe(tok string) bool {
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '/' || c == '=') {
			return false
		}
	}
	return true
}

// snapshotFormat is the first byte of an encoded snapshot: format 1 is
// uvarint(sequence) uvarint(schema version) state.
const snapshotFormat = 1

func encodeSnapshot(s Snapshot) []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(s.State))
	b = append(b, snapshotFormat)
	b = binary.AppendUvarint(b, s.Sequence)
	b = binary.AppendUvarint(b, uint64(s.SchemaVersion))
	return append(b, s.State...)
}

func decodeSnapshot(b []byte) (Snapshot, error) {
	if len(b) == 0 || b[0] != snapshotFormat {
		return Snapshot{}, fmt.Errorf("%w: unknown snapshot format", ErrCorruptEvent)
	}
	b = b[1:]
	seq, n := binary.Uvarint(b)
	if n <= 0 {
		return Snapshot{}, fmt.Errorf("%w: bad snapshot sequence", ErrCorruptEvent)
	}
	b = b[n:]
	ver, n := binary.Uvarint(b)
	if n <= 0 || ver > 1<<31 {
		return Snapshot{}, fmt.Errorf("%w: bad snapshot schema version", ErrCorruptEvent)
	}
	return Snapshot{State: b[n:], Sequence: seq, SchemaVersion: int(ver)}, nil
}
