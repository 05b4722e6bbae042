package queryservice

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go/jetstream"
)

// SnapshotSchema is the version of the model's snapshot encoding. A snapshot of another version
// is ignored (the model is built from the stream), so changing the encoding needs no migration.
const SnapshotSchema = 3

// snapshotObject is the snapshot's name in the bucket.
const snapshotObject = "model"

// Object metadata, readable without reading the snapshot.
const (
	metaSchema        = "schema"
	metaStream        = "stream"
	metaStreamCreated = "stream_created"
	metaSequence      = "sequence"
)

// errSnapshotMismatch: the stored snapshot is not one this instance may start from.
var errSnapshotMismatch = errors.New("snapshot does not match the stream")

// snapshotV1 is the encoded model, in gob (which decodes a byte slice at once, a slice of
// slices element by element, so the large parts are flat byte slices):
//   - States: each row's state (the domain's binary encoding, as the row holds it), uvarint
//     length first, in id order; Versions: each row's version, in the same order.
//   - Orders: each index's entries in the index's order (orderedTrees), as row numbers
//     (little-endian uint32), with the entry's position in the row for the policy and metadata
//     indexes: loading an index is then a check of its order, not a sort.
//   - Text: the text index as the view's rows need it, when the index has lost nothing since
//     the view was taken (else empty, and the rows' texts are indexed on load).
//   - Trace: the trace index's entries, traceRecord bytes each.
type snapshotV1 struct {
	Sequence  uint64
	States    []byte
	Versions  []uint64
	Orders    []byte
	Text      []byte // the text index (textIndex.appendSnapshot); empty: indexed anew on load
	Trace     []byte // traceRecord bytes per entry
	Resources int
}

// traceRecord is the size of one trace index entry in snapshotV1.Trace: the correlation id's
// key and the stream sequence, big-endian.
const traceRecord = 16

func appendTraceRecord(out []byte, e traceEntry) []byte {
	out = binary.BigEndian.AppendUint64(out, e.key)
	return binary.BigEndian.AppendUint64(out, e.seq)
}

func readTraceRecord(rec []byte) traceEntry {
	return traceEntry{key: binary.BigEndian.Uint64(rec), seq: binary.BigEndian.Uint64(rec[8:])}
}

// snapshots keeps the model in a JetStream Object Store bucket (chunked, so a model of any size
// fits; the metadata is published after the chunks, so a crash mid-write leaves the previous
// snapshot in force). Every instance may write it; the newest sequence wins.
type snapshots struct {
	obs jetstream.ObjectStore
}

func openSnapshots(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*snapshots, error) {
	obs, err := js.ObjectStore(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		obs, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      bucket,
			Description: "Snapshots of the query service's model with the stream sequence they stand for.",
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			obs, err = js.ObjectStore(ctx, bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("queryservice: snapshot bucket %s: %w", bucket, err)
	}
	return &snapshots{obs: obs}, nil
}

// streamIdentity names one incarnation of the stream: its name and creation time (a stream
// deleted and created again under the same name is another stream).
type streamIdentity struct {
	name    string
	created time.Time
}

// storedSequence is the sequence of the stored snapshot, 0 when there is none or it is not
// this schema's or this stream's.
func (b *snapshots) storedSequence(ctx context.Context, id streamIdentity) (uint64, error) {
	info, err := b.obs.GetInfo(ctx, snapshotObject)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("queryservice: snapshot info: %w", err)
	}
	if checkMeta(info.Metadata, id, ^uint64(0)) != nil {
		return 0, nil
	}
	seq, _ := strconv.ParseUint(info.Metadata[metaSequence], 10, 64)
	return seq, nil
}

// checkMeta refuses a snapshot of another schema, of another stream, or ahead of the stream's
// head.
func checkMeta(meta map[string]string, id streamIdentity, head uint64) error {
	seq, err := strconv.ParseUint(meta[metaSequence], 10, 64)
	switch {
	case meta[metaSchema] != strconv.Itoa(SnapshotSchema):
		return fmt.Errorf("%w: schema %q, this code reads %d", errSnapshotMismatch, meta[metaSchema], SnapshotSchema)
	case meta[metaStream] != id.name || meta[metaStreamCreated] != id.created.UTC().Format(time.RFC3339Nano):
		return fmt.Errorf("%w: made from stream %s created %s, not %s created %s", errSnapshotMismatch,
			meta[metaStream], meta[metaStreamCreated], id.name, id.created.UTC().Format(time.RFC3339Nano))
	case err != nil:
		return fmt.Errorf("%w: sequence %q", errSnapshotMismatch, meta[metaSequence])
	case seq > head:
		return fmt.Errorf("%w: at sequence %d, ahead of the stream's last sequence %d", errSnapshotMismatch, seq, head)
	}
	return nil
}

// save writes the model as v shows it and returns the encoded size.
func (b *snapshots) save(ctx context.Context, v View, id streamIdentity) (int, error) {
	snap := snapshotV1{Sequence: v.Sequence()}
	number := map[*resource]uint32{}
	v.each(func(r *resource) bool {
		number[r] = uint32(len(snap.Versions))
		snap.States = binary.AppendUvarint(snap.States, uint64(len(r.data()))) // a row is its state's encoding
		snap.States = append(snap.States, r.data()...)
		snap.Versions = append(snap.Versions, r.version)
		return true
	})
	snap.Resources = len(snap.Versions)
	snap.Orders = v.t.appendOrders(snap.Orders, number)
	if text, ok := v.text.appendSnapshot(nil, v.textGen); ok {
		snap.Text = text
	}
	entries := v.trace.upTo(v.Sequence())
	snap.Trace = make([]byte, 0, len(entries)*traceRecord)
	for _, e := range entries {
		snap.Trace = appendTraceRecord(snap.Trace, e)
	}
	var buf bytes.Buffer
	zw := s2.NewWriter(&buf)
	if err := gob.NewEncoder(zw).Encode(&snap); err != nil {
		return 0, fmt.Errorf("queryservice: encode snapshot: %w", err)
	}
	if err := zw.Close(); err != nil {
		return 0, fmt.Errorf("queryservice: compress snapshot: %w", err)
	}
	size := buf.Len() // before Put reads buf
	_, err := b.obs.Put(ctx, jetstream.ObjectMeta{Name: snapshotObject, Metadata: map[string]string{
		metaSchema: strconv.Itoa(SnapshotSchema), metaStream: id.name,
		metaStreamCreated: id.created.UTC().Format(time.RFC3339Nano), metaSequence: strconv.FormatUint(snap.Sequence, 10),
	}}, &buf)
	if err != nil {
		return 0, fmt.Errorf("queryservice: write snapshot at sequence %d: %w", snap.Sequence, err)
	}
	return size, nil
}

// load fills the empty model m from the stored snapshot when it matches the stream (id, at or
// below head) and returns its sequence; 0 when there is none. A mismatching or unreadable
// snapshot is an error wrapping errSnapshotMismatch or the decoding error: the caller builds
// from the stream then.
func (b *snapshots) load(ctx context.Context, m *Model, id streamIdentity, head uint64) (uint64, error) {
	info, err := b.obs.GetInfo(ctx, snapshotObject)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("queryservice: snapshot info: %w", err)
	}
	if err := checkMeta(info.Metadata, id, head); err != nil {
		return 0, err
	}
	res, err := b.obs.Get(ctx, snapshotObject)
	if err != nil {
		return 0, fmt.Errorf("queryservice: read snapshot: %w", err)
	}
	defer res.Close()
	zr := s2.NewReader(res)
	var snap snapshotV1
	if err := gob.NewDecoder(zr).Decode(&snap); err != nil {
		return 0, fmt.Errorf("queryservice: decode snapshot: %w", err)
	}
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return 0, fmt.Errorf("queryservice: read snapshot: %w", err)
	}
	if snap.Resources != len(snap.Versions) || len(snap.Trace)%traceRecord != 0 {
		return 0, fmt.Errorf("queryservice: snapshot columns disagree: %d versions, %d resources, %d trace bytes", len(snap.Versions), snap.Resources, len(snap.Trace))
	}
	return snap.Sequence, m.restore(snap)
}

// restore loads a snapshot into the empty model in one write, each index built in bulk.
func (m *Model) restore(snap snapshotV1) error {
	rows := make([]*resource, len(snap.Versions))
	states := snap.States
	for i := range rows {
		n, k := binary.Uvarint(states)
		if k <= 0 || n > uint64(len(states)-k) {
			return fmt.Errorf("queryservice: snapshot resource %d: truncated", i)
		}
		if snap.Versions[i] == 0 {
			return fmt.Errorf("queryservice: snapshot resource %d has no version", i)
		}
		r, err := rowOf(states[k:k+int(n)], snap.Versions[i])
		if err != nil {
			return fmt.Errorf("queryservice: snapshot resource %d: %w", i, err)
		}
		if i > 0 && compareID(rows[i-1], r) >= 0 {
			return fmt.Errorf("queryservice: snapshot resource %d is out of id order", i)
		}
		states = states[k+int(n):]
		rows[i] = r
	}
	if len(states) != 0 {
		return fmt.Errorf("queryservice: %d bytes after the snapshot's resources", len(states))
	}
	entries := make([]traceEntry, len(snap.Trace)/traceRecord)
	for i := range entries {
		entries[i] = readTraceRecord(snap.Trace[i*traceRecord:])
		if entries[i].seq > snap.Sequence {
			return fmt.Errorf("queryservice: snapshot at sequence %d has a trace entry at sequence %d", snap.Sequence, entries[i].seq)
		}
	}
	// The text index and the trace log are filled while the tables load.
	done := make(chan struct{})
	go func() {
		defer close(done)
		if len(snap.Text) == 0 || !m.text.loadSnapshot(snap.Text) {
			m.text.addRows(rows)
		}
		m.trace.load(entries)
	}()
	m.w.loadOrdered(rows, snap.Orders)
	m.w.seq = snap.Sequence
	<-done
	m.cur.Store(m.w.copy())
	m.mu.Lock()
	m.applied = snap.Sequence
	m.written.Store(snap.Sequence)
	m.resources = len(rows)
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
	return nil
}
